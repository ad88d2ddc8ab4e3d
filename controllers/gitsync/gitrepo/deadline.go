package gitrepo

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's SSH transport bounds the TCP dial but not the SSH handshake
// that follows: a server that accepts and then says nothing would hold a
// Resolve forever, whatever the context. Its only hook on the connection
// is the proxy dialer (x/net/proxy), so SSH calls with a deadline go
// through this "proxy", which dials directly and sets the deadline on the
// connection itself.
const deadlineScheme = "vidra-deadline"

// deadlineSlack lets the context, whose errors say more, expire first.
const deadlineSlack = 100 * time.Millisecond

func init() {
	proxy.RegisterDialerType(deadlineScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		ns, err := strconv.ParseInt(u.Query().Get("at"), 10, 64)
		if err != nil {
			return nil, err
		}
		return deadlineDialer{deadline: time.Unix(0, ns)}, nil
	})
}

// deadlineProxy returns the proxy options bounding an SSH connection by
// ctx's deadline; none for HTTP (its requests follow the context) or
// without a deadline.
func deadlineProxy(ctx context.Context, r remote) transport.ProxyOptions {
	deadline, ok := ctx.Deadline()
	if !ok || !r.ssh {
		return transport.ProxyOptions{}
	}
	at := deadline.Add(deadlineSlack).UnixNano()
	return transport.ProxyOptions{URL: deadlineScheme + "://deadline/?at=" + strconv.FormatInt(at, 10)}
}

type deadlineDialer struct{ deadline time.Time }

func (d deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, d.deadline)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(d.deadline); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
