package main

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vidra-operator/vidra/controllers/manifeststore"
)

const manifestUsage = `Print the manifest a VidraResource applies, however it is stored: readable
in spec.manifest, gzip-compressed in spec.manifestGzip, or split over
ConfigMaps in the operator's namespace (spec.manifestChunks, checked against
the recorded size and SHA-256).

Usage:
  kubectl vidra manifest <vidraresource>`

func runManifest(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("manifest", manifestUsage)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("manifest", "manifest needs exactly one VidraResource name")
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	vr, err := c.vidra.InfrahubV1alpha1().VidraResources().Get(ctx, pos[0], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("VidraResource %s not found", pos[0])
	}
	if err != nil {
		return fmt.Errorf("read VidraResource %s: %s", pos[0], oneLine(err.Error()))
	}
	// No size limit of the operator's here: show whatever is stored.
	data, err := manifeststore.Read(ctx, &vr.Spec, manifeststore.ClientGetter{Client: c.kube}, 1<<30)
	if err != nil {
		return fmt.Errorf("VidraResource %s: %s", vr.Name, oneLine(err.Error()))
	}
	_, err = a.stdout.Write(data)
	return err
}
