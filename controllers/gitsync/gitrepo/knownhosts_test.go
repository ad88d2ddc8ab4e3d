package gitrepo

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyCheck(t *testing.T) {
	key, other, revoked := newKey(t), newKey(t), newKey(t)
	lines := knownhosts.Line([]string{"git.example.com"}, key) + "\n" +
		knownhosts.Line([]string{"[git.example.com]:2222"}, other) + "\n" +
		// A hashed entry, as ssh-keyscan -H writes it.
		fmt.Sprintf("%s %s", knownhosts.HashHostname("hashed.example.com"), ssh.MarshalAuthorizedKey(key)) +
		"*.wild.example.com,!bad.wild.example.com " + string(ssh.MarshalAuthorizedKey(other)) +
		"# a comment\n\n" +
		"@revoked * " + string(ssh.MarshalAuthorizedKey(revoked)) +
		"@cert-authority *.example.com " + string(ssh.MarshalAuthorizedKey(other))
	hosts, err := parseKnownHosts([]byte(lines))
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	for _, tc := range []struct {
		address string
		key     ssh.PublicKey
		ok      bool
	}{
		{"git.example.com:22", key, true},
		{"git.example.com:22", other, false},
		{"git.example.com:2222", other, true},
		{"git.example.com:2222", key, false},
		{"hashed.example.com:22", key, true},
		{"hashed.example.com:2222", key, false},
		{"a.wild.example.com:22", other, true},
		{"bad.wild.example.com:22", other, false},
		{"unknown.example.com:22", key, false},
		{"git.example.com:22", revoked, false},
	} {
		var refused error
		check, algos := hostKeyCheck(hosts, tc.address, &refused)
		err := check(tc.address, remote, tc.key)
		if (err == nil) != tc.ok || (refused == nil) != tc.ok {
			t.Errorf("%s with key %s: err=%v refused=%v, want ok=%v", tc.address, ssh.FingerprintSHA256(tc.key), err, refused, tc.ok)
		}
		if tc.ok && len(algos) == 0 {
			t.Errorf("%s: no host key algorithm to ask for", tc.address)
		}
	}
	if _, err := parseKnownHosts([]byte("# nothing\n")); err == nil {
		t.Error("known_hosts without a key accepted")
	}
	if _, err := parseKnownHosts([]byte("host not-a-key\n")); err == nil || errors.Is(err, nil) {
		t.Error("malformed known_hosts accepted")
	}
}
