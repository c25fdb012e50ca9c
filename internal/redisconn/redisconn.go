// Package redisconn turns sdgate's Redis settings (an address or a URL)
// into go-redis options, the same way for every package that uses Redis.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Options is where and how to reach Redis: Addr (host:port) with the
// credentials, or URL (redis://[user:password@]host:port[/db], rediss://
// for TLS) alone.
type Options struct {
	Addr, URL          string
	Username, Password string
	DB                 int
	TLS                *tls.Config
}

// Client options for o; an error says what is wrong with the settings.
func (o Options) Client() (*redis.Options, error) {
	switch {
	case o.Addr != "" && o.URL != "":
		return nil, errors.New("redis: give Addr or URL, not both")
	case o.URL != "":
		ro, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		return ro, nil
	case o.Addr != "":
		return &redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLS}, nil
	}
	return nil, errors.New("redis: no Addr or URL")
}
