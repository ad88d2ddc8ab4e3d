package main

import (
	"context"
	"encoding/json"
	"fmt"
)

const suspendUsage = `Suspend InfrahubSyncs or GitSyncs: Infrahub or the repository is no longer
read and nothing is applied or pruned, by the sync or by its VidraResources.
Objects already applied stay as they are. Sets spec.suspend to true.
A sync is NAME (an InfrahubSync, else a GitSync), infrahubsync/NAME or
gitsync/NAME.

Usage:
  kubectl vidra suspend <sync> [<sync>...] [-o name]`

const resumeUsage = `Resume suspended InfrahubSyncs or GitSyncs: sets spec.suspend to false, so
the operator reads Infrahub or the repository and applies again right away.

Usage:
  kubectl vidra resume <sync> [<sync>...] [-o name]`

func runSuspend(ctx context.Context, a *app, args []string) error {
	return setSuspend(ctx, a, args, "suspend", suspendUsage, true)
}

func runResume(ctx context.Context, a *app, args []string) error {
	return setSuspend(ctx, a, args, "resume", resumeUsage, false)
}

func setSuspend(ctx context.Context, a *app, args []string, command, usage string, suspend bool) error {
	f := a.newFlags(command, usage)
	output := outputFlag(f, "text", "name")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(command, "%s needs at least one sync name", command)
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"suspend": suspend}})
	if err != nil {
		return err
	}
	word := map[bool]string{true: "suspended", false: "resumed"}[suspend]
	for _, arg := range pos {
		s, err := getSync(ctx, c, arg)
		if err != nil {
			return err
		}
		if s.Suspend == suspend {
			state := map[bool]string{true: "suspended", false: "not suspended"}[suspend]
			if output.value == "name" {
				fmt.Fprintln(a.stdout, s.resourceName())
				continue
			}
			fmt.Fprintf(a.stdout, "%s is already %s\n", s, state)
			continue
		}
		if err := s.patch(ctx, c, patch); err != nil {
			return err
		}
		if output.value == "name" {
			fmt.Fprintln(a.stdout, s.resourceName())
			continue
		}
		fmt.Fprintf(a.stdout, "%s %s\n", s, word)
	}
	return nil
}
