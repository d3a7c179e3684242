// Command compose-load loads Compose files the way `docker compose config` does, with the
// compose-spec reference library (github.com/compose-spec/compose-go/v2): schema validation,
// .env interpolation, profiles, path resolution and the consistency checks (undefined
// volumes, networks, services in depends_on...). tests/test_compose.py builds and runs it,
// because no Docker engine or `docker compose` plugin exists where the tests run.
//
// Usage: compose-load [-env-file FILE] [-profile NAME]... [-workdir DIR] FILE...
// Prints the resolved project as JSON on stdout; exits 1 with the loader's error otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var envFiles, profiles list
	workdir := flag.String("workdir", "", "project directory (default: the first file's)")
	flag.Var(&envFiles, "env-file", "environment file for interpolation (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-load [-env-file FILE] [-profile NAME]... FILE...")
		os.Exit(2)
	}
	var opts []cli.ProjectOptionsFn
	if *workdir != "" {
		opts = append(opts, cli.WithWorkingDirectory(*workdir))
	}
	opts = append(opts,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithName("compose-load"),
	)
	options, err := cli.NewProjectOptions(flag.Args(), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
