module github.com/troupehq/troupe/proto

go 1.26
