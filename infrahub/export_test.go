package infrahub

import (
	"context"
	"time"
)

// SetSleep replaces the backoff sleep of c (tests must not really wait).
func SetSleep(c *Client, f func(context.Context, time.Duration) error) { c.sleep = f }
