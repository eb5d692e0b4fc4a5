module github.com/hcp-dev/hcp/release/pause

go 1.26.0
