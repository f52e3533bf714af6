// Package conf holds what the SDK's config structs share: filling the
// fields a caller left zero with their defaults, and checking values.
package conf

import "fmt"

// Default sets *v to d if *v is its type's zero value.
func Default[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// NotNegative returns an error naming field if v is negative, else nil,
// which errors.Join drops: validations read as one errors.Join of checks.
func NotNegative[T ~int | ~int64](field string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s must not be negative, got %v", field, v)
	}
	return nil
}
