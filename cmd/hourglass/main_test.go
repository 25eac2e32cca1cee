package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runArgs("--help")
	require.Equal(t, 0, code)
	for _, c := range commands() {
		require.Contains(t, out, "  "+c.name+" ")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs("version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "hourglass "+version+"\n"), out)
	require.Contains(t, out, "go1.")
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := runArgs()
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "Usage:")

	code, _, errOut = runArgs("nope")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "nope"`)

	code, _, _ = runArgs("version", "extra")
	require.Equal(t, 2, code)

	code, _, errOut = runArgs("version", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "Usage: hourglass version")
}
