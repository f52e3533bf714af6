package cluster

// OwnerOf returns id's owner in t, for the external tests.
func OwnerOf(t Topology, id ClusterIdentity) string {
	owner, _ := newPlacement(t).owner(id)
	return owner
}

// WithDefaults returns c with its defaults filled in, or why it is invalid.
func WithDefaults(c Config) (Config, error) { return c.withDefaults() }
