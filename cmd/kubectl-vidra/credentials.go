package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
)

const credentialsUsage = `Write the Secret holding the credentials the operator uses for an Infrahub:
an API token, or a username and a password. Values are read from files (or
stdin with "-") so they never appear in the shell history or in process
listings, and they are never printed.

The Secret goes to the operator's namespace, with the label
` + infrahubsync.LegacyCredentialsLabel + `=<host>. Reference it from an InfrahubSync with
spec.source.credentialsSecretRef; username/password Secrets are also found
by that label for syncs without a reference.

Usage:
  kubectl vidra credentials create <infrahub-url> --token-file FILE [--name N] [-n ns]
  kubectl vidra credentials create <infrahub-url> --username U --password-file FILE [--name N] [-n ns]

Examples:
  kubectl vidra credentials create https://infrahub.example.com --token-file token.txt
  pass show infrahub | kubectl vidra credentials create http://10.0.0.5:8000 --username vidra --password-file -`

func runCredentials(ctx context.Context, a *app, args []string) error {
	args, err := onlySubcommand("credentials", "create", args)
	if err != nil {
		return err
	}
	f := a.newFlags("credentials create", credentialsUsage)
	tokenFile := f.String("token-file", "", "file holding the Infrahub API token (\"-\" for stdin)")
	username := f.String("username", "", "Infrahub username, with --password-file")
	passwordFile := f.String("password-file", "", "file holding the password (\"-\" for stdin)")
	name := f.String("name", "", "name of the Secret (default infrahub-credentials-<host>)")
	overwrite := f.Bool("overwrite", false, "replace an existing Secret of that name")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	ns := a.kube.namespace()
	if len(pos) != 1 {
		return usagef("credentials", "credentials create needs exactly one Infrahub URL")
	}
	base, host, err := infrahubURL(pos[0])
	if err != nil {
		return usagef("credentials", "%v", err)
	}
	data := map[string][]byte{}
	kind := ""
	switch {
	case *tokenFile != "" && (*username != "" || *passwordFile != ""):
		return usagef("credentials", "give either --token-file or --username with --password-file, not both")
	case *tokenFile != "":
		token, err := readValueFile(a, *tokenFile, "token")
		if err != nil {
			return err
		}
		data["token"] = []byte(token)
		kind = "API token"
	case *username != "" && *passwordFile != "":
		if strings.TrimSpace(*username) != *username || *username == "" {
			return usagef("credentials", "--username must not start or end with spaces")
		}
		password, err := readValueFile(a, *passwordFile, "password")
		if err != nil {
			return err
		}
		data["username"] = []byte(*username)
		data["password"] = []byte(password)
		kind = "username " + *username + " and password"
	case *username != "" || *passwordFile != "":
		return usagef("credentials", "--username and --password-file go together")
	default:
		return usagef("credentials", "give --token-file, or --username with --password-file")
	}
	if *name == "" {
		*name = objectName("infrahub-credentials-", host)
	} else if err := validSecretName(*name); err != nil {
		return usagef("credentials", "%v", err)
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      *name,
			Namespace: ns,
			Labels: map[string]string{
				infrahubsync.LegacyCredentialsLabel: cluster.LabelValueForHost(host),
				labelManagedBy:                      pluginName,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	verb, err := writeSecret(ctx, c.kube, secret, *overwrite)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Secret %s/%s %s (%s for %s).\n", ns, *name, verb, kind, base)
	fmt.Fprintf(a.stdout, "Reference it from an InfrahubSync:\n\n  spec:\n    source:\n      infrahubAPIURL: %s\n      credentialsSecretRef:\n        name: %s\n", base, *name)
	return nil
}

// infrahubURL checks an Infrahub base URL as the CRD does and returns it
// without a trailing slash, and its lower-case host.
func infrahubURL(raw string) (string, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return "", "", fmt.Errorf("%q is not an http(s) URL with a host, e.g. https://infrahub.example.com", raw)
	}
	if u.User != nil {
		return "", "", fmt.Errorf("the Infrahub URL must not hold credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("the Infrahub URL must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), strings.ToLower(u.Hostname()), nil
}
