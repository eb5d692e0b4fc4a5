// Command hcp is the hosted control planes command line.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hcp-dev/hcp/internal/cli"
)

func main() {
	if err := cli.NewRoot().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
