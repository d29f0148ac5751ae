// Package server assembles one `fiat serve` node: the store in the data
// dir, the deployer and its router on the public port, and the admin API on
// the admin port.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/gitpush"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/process"
	"github.com/fiatdev/fiat/script"
)

// Config is how a node is set up; `fiat serve` flags fill it in.
type Config struct {
	// Listen is the public router's address.
	Listen string
	// Admin is the admin API's address.
	Admin string
	// Data is the node's own directory: the SQLite store unless Store is
	// set, the admin token's file and the cache of compiled programs.
	Data string
	// Store, if set, is the URL of the PostgreSQL database the node keeps
	// its state in, which other nodes may share.
	Store string
	// Domain ends every public address.
	Domain string
	// MaxBundle is the largest project a deploy accepts, in bytes.
	MaxBundle int64
	// MaxBody is the largest request body a handler may read, in bytes.
	MaxBody int64
	// StopIdle is how long a version no env uses runs after its last
	// request; 0 means deploy.DefaultStopIdle.
	StopIdle time.Duration
	// MaxHeader is the largest request header, in bytes.
	MaxHeader int
	// MaxConns and MaxAdminConns cap the open connections of the public
	// and the admin port, so that a flood of one cannot take the file
	// descriptors the other needs. 0 takes DefaultConns.
	MaxConns, MaxAdminConns int
	// Timeouts bound the connections of both ports.
	Timeouts Timeouts
	// GitBranches says which env each branch pushed with `git push`
	// deploys to; nil means gitpush.DefaultBranches.
	GitBranches gitpush.Branches
	// LockCheck is how often the server makes sure it still holds the
	// data dir's lock file.
	LockCheck time.Duration
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
	Timeouts: Timeouts{
		Header: 10 * time.Second,
		// A project bundle of --max-bundle's 32 MiB at 1 MB/s.
		Body:  time.Minute,
		Write: time.Minute,
		Idle:  time.Minute,
	},
	LockCheck: time.Second,
}

// TokenFile is the admin token's file name in the data dir.
const TokenFile = "admin-token"

// ProcessesDir is where, in the data dir, process services are built and
// run from.
const ProcessesDir = "processes"

// GitDir is where, in the data dir, the repositories pushed with `git
// push` are kept.
const GitDir = "git"

// Server is a running node.
type Server struct {
	Deployer *deploy.Deployer
	// Addresses formats the public URLs of services.
	Addresses fiat.Addresses
	// Public and Admin are the addresses the two listeners are bound to.
	Public, Admin net.Addr
	// Store says where the state is: the SQLite file, or the PostgreSQL
	// URL without its password.
	Store string
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
	// stopWatch stops watching the data dir's lock.
	stopWatch chan struct{}
}

// Start opens the data dir (creating it on first start), binds both ports
// and serves until Shutdown.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	public, admin := DefaultConns()
	cfg.MaxConns, cfg.MaxAdminConns = cmp.Or(cfg.MaxConns, public), cmp.Or(cfg.MaxAdminConns, admin)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	s := &Server{TokenPath: filepath.Join(cfg.Data, TokenFile), serveErr: make(chan error, 3), stopWatch: make(chan struct{})}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	lock, err := lockDataDir(cfg.Data)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, lock.Close)
	if err := makePrivate(cfg.Data); err != nil {
		return nil, err
	}
	packPath := filepath.Join(cfg.Data, "programs.pack")
	if err := createPrivate(packPath); err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.Store = filepath.Join(cfg.Data, StoreFile)
	if cfg.Store != "" {
		s.Store = Redact(cfg.Store)
	}
	s.closers = append(s.closers, db.Close)
	if s.Token, s.NewToken, err = adminToken(ctx, db, s.TokenPath); err != nil {
		return nil, err
	}
	programs, err := script.OpenCache(packPath)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, programs.Close)
	scripts := script.NewRuntime(programs, cfg.Logger)
	s.closers = append(s.closers, func() error { scripts.Close(); return nil })
	processes, err := process.NewRuntime(filepath.Join(cfg.Data, ProcessesDir), db, cfg.Logger)
	if err != nil {
		return nil, err
	}
	publicLn, err := listen(cfg.Listen, cfg.MaxConns)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --listen %s: %w", cfg.Listen, err)
	}
	adminLn, err := listen(cfg.Admin, cfg.MaxAdminConns)
	if err != nil {
		publicLn.Close()
		return nil, fmt.Errorf("cannot listen on --admin %s: %w", cfg.Admin, err)
	}
	s.Public, s.Admin = publicLn.Addr(), adminLn.Addr()
	s.Addresses = fiat.Addresses{Domain: cfg.Domain, Port: urlPort(s.Public)}
	m := metrics.New()
	deployer, router, err := deploy.New(ctx, deploy.Config{
		Store:     db,
		Runtimes:  map[fiat.Kind]fiat.Runtime{fiat.Script: scripts, fiat.Process: processes},
		Metrics:   m,
		Logger:    cfg.Logger,
		Addresses: s.Addresses,
		MaxBody:   cfg.MaxBody,
		StopIdle:  cfg.StopIdle,
	})
	if err != nil {
		publicLn.Close()
		adminLn.Close()
		return nil, err
	}
	s.Deployer = deployer
	errorLog := slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	s.public = newHTTPServer(router, cfg.Timeouts, cfg.MaxHeader, errorLog)
	branches := cfg.GitBranches
	if branches == nil {
		branches = gitpush.DefaultBranches()
	}
	s.admin = newHTTPServer(api.NewServer(api.ServerConfig{
		Deployer:  deployer,
		Store:     db,
		Token:     s.Token,
		MaxBundle: cfg.MaxBundle,
		Metrics:   m.Handler(),
		Logger:    cfg.Logger,
		Git: gitpush.Handler(gitpush.Config{
			Dir:          filepath.Join(cfg.Data, GitDir),
			Deployer:     deployer,
			Branches:     branches,
			MaxBundle:    cfg.MaxBundle,
			MaxPush:      gitpush.DefaultMaxPush,
			MaxRepoBytes: gitpush.DefaultMaxRepoBytes,
			MaxRepos:     gitpush.DefaultMaxRepos,
			Logger:       cfg.Logger,
		}),
	}), cfg.Timeouts, cfg.MaxHeader, errorLog)
	go func() { s.serveErr <- s.public.Serve(publicLn) }()
	go func() { s.serveErr <- s.admin.Serve(adminLn) }()
	go s.watchLock(lock, cfg.LockCheck, cfg.Logger.With("data", cfg.Data))
	return s, nil
}

// watchLock checks every interval that the server still holds the data
// dir's lock, takes it again if its file was deleted, and makes Wait
// return if another server took it.
func (s *Server) watchLock(lock *dataLock, interval time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopWatch:
			return
		case <-tick.C:
		}
		retaken, err := lock.check()
		if err != nil {
			logger.Error("LOST THE DATA DIR'S LOCK: stopping, so that two servers do not share one data dir; find what deletes files in the data dir", "err", err)
			s.serveErr <- err
			return
		}
		if retaken {
			logger.Error("THE DATA DIR'S LOCK FILE WAS DELETED under this running server: locked a new one; find what deletes files in the data dir")
		}
	}
}

// Wait returns when a listener fails, or when another server took the
// data dir: then the server must stop.
func (s *Server) Wait() error {
	return <-s.serveErr
}

// Shutdown stops accepting requests, lets those in flight finish on the
// version they started on (until ctx ends), and closes the cache of
// compiled programs, the store and the data dir.
func (s *Server) Shutdown(ctx context.Context) error {
	close(s.stopWatch)
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
