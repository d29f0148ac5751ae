// Package server assembles one `fiat serve` node: the store in the data
// dir, the deployer and its router on the public port, and the admin API on
// the admin port.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/script"
	"github.com/fiatdev/fiat/store/sqlite"
)

// Config is how a node is set up; `fiat serve` flags fill it in.
type Config struct {
	// Listen is the public router's address.
	Listen string
	// Admin is the admin API's address.
	Admin string
	// Data is the directory holding the state.
	Data string
	// Domain ends every public address.
	Domain string
	// MaxBundle is the largest project a deploy accepts, in bytes.
	MaxBundle int64
	// MaxBody is the largest request body a handler may read, in bytes.
	MaxBody int64
	// MaxHeader is the largest request header, in bytes.
	MaxHeader int
	Logger    *slog.Logger
}

// Defaults are the values `fiat serve` starts with.
var Defaults = Config{
	Listen:    "127.0.0.1:8080",
	Admin:     "127.0.0.1:8081",
	Data:      "fiat-data",
	Domain:    "localhost",
	MaxBundle: 32 << 20,
	MaxBody:   10 << 20,
	MaxHeader: 64 << 10,
}

// TokenFile is the admin token's file name in the data dir.
const TokenFile = "admin-token"

// Server is a running node.
type Server struct {
	Deployer *deploy.Deployer
	// Addresses formats the public URLs of services.
	Addresses fiat.Addresses
	// Public and Admin are the addresses the two listeners are bound to.
	Public, Admin net.Addr
	// TokenPath is where the admin token is kept; NewToken says whether
	// this start created it.
	TokenPath string
	NewToken  bool
	Token     string

	// closers close what Start opened, last opened first.
	closers  []func() error
	public   *http.Server
	admin    *http.Server
	serveErr chan error
}

// Start opens the data dir (creating it on first start), binds both ports
// and serves until Shutdown.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	s := &Server{TokenPath: filepath.Join(cfg.Data, TokenFile), serveErr: make(chan error, 2)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	unlock, err := lockDataDir(cfg.Data)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, unlock)
	if s.Token, s.NewToken, err = adminToken(s.TokenPath); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(filepath.Join(cfg.Data, "fiat.db"))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, db.Close)
	programs, err := script.OpenCache(filepath.Join(cfg.Data, "programs.pack"))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, programs.Close)
	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --listen %s: %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		publicLn.Close()
		return nil, fmt.Errorf("cannot listen on --admin %s: %w", cfg.Admin, err)
	}
	s.Public, s.Admin = publicLn.Addr(), adminLn.Addr()
	s.Addresses = fiat.Addresses{Domain: cfg.Domain, Port: urlPort(s.Public)}
	m := metrics.New()
	deployer, router, err := deploy.New(ctx, deploy.Config{
		Store:     db,
		Programs:  programs,
		Metrics:   m,
		Logger:    cfg.Logger,
		Addresses: s.Addresses,
		MaxBody:   cfg.MaxBody,
	})
	if err != nil {
		publicLn.Close()
		adminLn.Close()
		return nil, err
	}
	s.Deployer = deployer
	// ReadTimeout bounds slow request bodies too: a script's time limit
	// cannot interrupt a handler blocked reading one.
	s.public = &http.Server{Handler: router, MaxHeaderBytes: cfg.MaxHeader, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	s.admin = &http.Server{Handler: api.NewServer(api.ServerConfig{
		Deployer:  deployer,
		Store:     db,
		Token:     s.Token,
		MaxBundle: cfg.MaxBundle,
		Metrics:   m.Handler(),
		Logger:    cfg.Logger,
	}), MaxHeaderBytes: cfg.MaxHeader, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.public.Serve(publicLn) }()
	go func() { s.serveErr <- s.admin.Serve(adminLn) }()
	return s, nil
}

// Wait returns when a listener fails.
func (s *Server) Wait() error {
	return <-s.serveErr
}

// Shutdown stops accepting requests, lets those in flight finish on the
// version they started on (until ctx ends), and closes the cache of
// compiled programs, the store and the data dir.
func (s *Server) Shutdown(ctx context.Context) error {
	err := errors.Join(s.public.Shutdown(ctx), s.admin.Shutdown(ctx))
	// The deployer is done with the cache once its pending Puts are.
	s.Deployer.Close()
	return errors.Join(err, s.close())
}

func (s *Server) close() error {
	var errs []error
	for _, close := range slices.Backward(s.closers) {
		errs = append(errs, close())
	}
	return errors.Join(errs...)
}

// urlPort is the port as public URLs show it: none for HTTP's default.
func urlPort(addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	if port == "80" {
		return ""
	}
	return port
}

// adminToken reads the admin token, creating it (readable only by its
// owner) on first start.
func adminToken(path string) (token string, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if token = strings.TrimSpace(string(data)); token == "" {
			return "", false, fmt.Errorf("admin token file %s is empty: delete it and restart to create a new one", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("cannot read admin token: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("cannot create admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return "", false, err
	}
	return token, true, nil
}
