module github.com/troupehq/troupe/sdk

go 1.26

require google.golang.org/protobuf v1.36.12

require go.uber.org/goleak v1.3.0 // indirect
