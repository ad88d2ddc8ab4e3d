package gitrepo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHost is one known_hosts line: the host patterns and the key.
type knownHost struct {
	revoked  bool
	patterns []string
	key      ssh.PublicKey
}

// parseKnownHosts reads known_hosts lines (OpenSSH format, plain or hashed
// host names, "@revoked" markers; "@cert-authority" lines are not
// supported and ignored). knownhosts.New wants files; the lines come from a
// Secret, and the operator's filesystem may be read-only.
func parseKnownHosts(data []byte) ([]knownHost, error) {
	var hosts []knownHost
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		marker, patterns, key, _, next, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %v", err)
		}
		rest = next
		if marker == "cert-authority" {
			continue
		}
		hosts = append(hosts, knownHost{revoked: marker == "revoked", patterns: patterns, key: key})
	}
	if len(hosts) == 0 {
		return nil, errors.New("known_hosts holds no host key")
	}
	return hosts, nil
}

// hostKeyCheck returns the callback accepting only a key known_hosts lists
// for the address, and the key algorithms to ask the server for (those of
// the listed keys, so a server holding several host keys presents one we
// can check). It sets *refused when it refuses a key.
func hostKeyCheck(hosts []knownHost, address string, refused *error) (ssh.HostKeyCallback, []string) {
	var algos []string
	addr := knownhosts.Normalize(address)
	for _, h := range hosts {
		if !h.revoked && matchesHost(h.patterns, addr) {
			algos = append(algos, keyAlgorithms(h.key.Type())...)
		}
	}
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		addr := knownhosts.Normalize(hostname)
		known := false
		for _, h := range hosts {
			if !bytes.Equal(h.key.Marshal(), key.Marshal()) {
				continue
			}
			if h.revoked {
				*refused = fmt.Errorf("host key %s of %s is revoked in known_hosts", ssh.FingerprintSHA256(key), addr)
				return *refused
			}
			if matchesHost(h.patterns, addr) {
				known = true
			}
		}
		if !known {
			*refused = fmt.Errorf("host key %s %s of %s is not in known_hosts", key.Type(), ssh.FingerprintSHA256(key), addr)
			return *refused
		}
		return nil
	}
	return check, dedupe(algos)
}

// matchesHost applies known_hosts patterns to a normalized address
// ("host" for port 22, else "[host]:port"): a negated pattern that matches
// rules the line out.
func matchesHost(patterns []string, addr string) bool {
	matched := false
	for _, p := range patterns {
		negate := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var ok bool
		switch {
		case strings.HasPrefix(p, "|1|"):
			ok = matchesHashed(p, addr)
		default:
			ok = wildcardMatch(strings.ToLower(p), strings.ToLower(addr))
		}
		if ok && negate {
			return false
		}
		matched = matched || ok
	}
	return matched
}

// matchesHashed checks a "|1|salt|hash" entry: HMAC-SHA1 of the address
// keyed with the salt.
func matchesHashed(entry, addr string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(addr))
	return hmac.Equal(mac.Sum(nil), want)
}

// wildcardMatch matches '*' (any run) and '?' (one character).
func wildcardMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcardMatch(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// keyAlgorithms lists the signature algorithms a host key of that type
// signs with.
func keyAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
