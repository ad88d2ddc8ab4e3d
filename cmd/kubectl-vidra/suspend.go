package main

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const suspendUsage = `Suspend InfrahubSyncs: Infrahub is no longer read and nothing is applied or
pruned, by the sync or by its VidraResources. Objects already applied stay as
they are. Sets spec.suspend to true.

Usage:
  kubectl vidra suspend <sync> [<sync>...] [-o name]`

const resumeUsage = `Resume suspended InfrahubSyncs: sets spec.suspend to false, so the operator
reads Infrahub and applies again right away.

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
	for _, name := range pos {
		syncs := c.vidra.InfrahubV1alpha1().InfrahubSyncs()
		s, err := syncs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return syncGetError(name, err)
		}
		if s.Spec.Suspend == suspend {
			state := map[bool]string{true: "suspended", false: "not suspended"}[suspend]
			if output.value == "name" {
				fmt.Fprintln(a.stdout, syncResourceName+name)
				continue
			}
			fmt.Fprintf(a.stdout, "InfrahubSync %s is already %s\n", name, state)
			continue
		}
		if _, err := syncs.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return syncGetError(name, err)
		}
		if output.value == "name" {
			fmt.Fprintln(a.stdout, syncResourceName+name)
			continue
		}
		fmt.Fprintf(a.stdout, "InfrahubSync %s %s\n", name, word)
	}
	return nil
}
