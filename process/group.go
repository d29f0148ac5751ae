package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/internal/ports"
)

// group is the instances of one version.
type group struct {
	id      fiat.Hash
	service string
	dir     string
	cfg     fiat.Config
	// links reach the versions it uses.
	links  *links
	owner  user
	limits *limiter
	logs   *logBook
	// changed is told the web instances ready, whenever they change.
	changed func(backends []string)

	mu        sync.Mutex
	instances []*instance // web instances
	workers   []*instance
	next      int // the number of the next web instance
}

// instance is one supervised process of a group, started again when it
// crashes.
type instance struct {
	g    *group
	name string
	// command is what the instance runs; a web instance serves on PORT,
	// a worker takes no traffic.
	command string
	web     bool
	// stop is closed to stop the instance; done is closed once its
	// process is gone and it is no longer supervised.
	stop, done chan struct{}
	// ready is told once whether the instance first became ready.
	ready chan error

	mu       sync.Mutex
	pid      int
	port     int
	state    string
	restarts int
	started  time.Time
	serving  bool
}

// Backoff of an instance that crashes: from restartMin, doubling to
// restartMax, and back to restartMin once it has run for stableFor.
const (
	restartMin = 100 * time.Millisecond
	restartMax = 30 * time.Second
	stableFor  = 10 * time.Second
)

// probeEvery is how often a starting instance is checked for readiness.
const probeEvery = 20 * time.Millisecond

// scale starts instances until there are n, each ready, or stops the
// newest until there are n.
func (g *group) scale(ctx context.Context, n int) error {
	g.mu.Lock()
	var started []*instance
	for len(g.instances)+len(started) < n {
		g.next++
		started = append(started, g.newInstance(fmt.Sprintf("web.%d", g.next), g.cfg.Process.Run, true))
	}
	var stopped []*instance
	if len(g.instances) > n {
		stopped = slices.Clone(g.instances[n:])
		g.instances = g.instances[:n]
	}
	g.instances = append(g.instances, started...)
	g.mu.Unlock()
	for _, i := range started {
		go i.supervise()
	}
	var errs []error
	for _, i := range started {
		if err := i.waitReady(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	stopAll(stopped)
	g.publish()
	if err := errors.Join(errs...); err != nil {
		g.mu.Lock()
		g.instances = slices.DeleteFunc(g.instances, func(i *instance) bool { return slices.Contains(started, i) })
		g.mu.Unlock()
		stopAll(started)
		g.publish()
		return err
	}
	return nil
}

// restart replaces each instance with a new one, ready before the old
// one stops.
func (g *group) restart(ctx context.Context) error {
	g.mu.Lock()
	old := slices.Clone(g.instances)
	g.mu.Unlock()
	for _, o := range old {
		g.mu.Lock()
		g.next++
		fresh := g.newInstance(o.name[:strings.IndexByte(o.name, '.')+1]+strconv.Itoa(g.next), o.command, o.web)
		g.mu.Unlock()
		go fresh.supervise()
		if err := fresh.waitReady(ctx); err != nil {
			stopAll([]*instance{fresh})
			return err
		}
		g.mu.Lock()
		if i := slices.Index(g.instances, o); i >= 0 {
			g.instances[i] = fresh
		}
		g.mu.Unlock()
		g.publish()
		stopAll([]*instance{o})
	}
	return nil
}

// stop stops every instance.
func (g *group) stop() {
	g.mu.Lock()
	all := append(g.instances, g.workers...)
	g.instances, g.workers = nil, nil
	g.mu.Unlock()
	stopAll(all)
}

func stopAll(instances []*instance) {
	var wg sync.WaitGroup
	for _, i := range instances {
		close(i.stop)
		wg.Go(func() { <-i.done })
	}
	wg.Wait()
}

// publish tells changed the web instances ready now.
func (g *group) publish() {
	g.changed(g.backends())
}

func (g *group) backends() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var addrs []string
	for _, i := range g.instances {
		i.mu.Lock()
		if i.serving {
			addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(i.port))
		}
		i.mu.Unlock()
	}
	return addrs
}

func (g *group) status() []fiat.Instance {
	g.mu.Lock()
	instances := append(slices.Clone(g.instances), g.workers...)
	g.mu.Unlock()
	out := []fiat.Instance{}
	for _, i := range instances {
		i.mu.Lock()
		kind, _, _ := strings.Cut(i.name, ".")
		out = append(out, fiat.Instance{ID: i.name, Type: kind, PID: i.pid, State: i.state, Restarts: i.restarts, Started: i.started, MemoryBytes: rss(i.pid)})
		i.mu.Unlock()
	}
	return out
}

func (g *group) newInstance(name, command string, web bool) *instance {
	return &instance{g: g, name: name, command: command, web: web, stop: make(chan struct{}), done: make(chan struct{}), ready: make(chan error, 1), state: "starting"}
}

// startWorkers starts one instance of each worker, and returns once each
// runs.
func (g *group) startWorkers(ctx context.Context) error {
	var started []*instance
	g.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(g.cfg.Process.Workers)) {
		i := g.newInstance(name+".1", g.cfg.Process.Workers[name], false)
		g.workers = append(g.workers, i)
		started = append(started, i)
	}
	g.mu.Unlock()
	for _, i := range started {
		go i.supervise()
	}
	for _, i := range started {
		if err := i.waitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (i *instance) set(f func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f()
}

// waitReady returns once the instance is first ready, or why it is not.
func (i *instance) waitReady(ctx context.Context) error {
	select {
	case err := <-i.ready:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// supervise runs the instance until it is stopped, starting it again with
// backoff when it exits. Until it is first ready, an exit or the start
// timeout ends it instead, and is told to waitReady.
func (i *instance) supervise() {
	defer close(i.done)
	g := i.g
	backoff := restartMin
	everReady := false
	for {
		boot := newTail(buildTailBytes)
		cmd, port, exited, err := i.start(boot)
		if err != nil {
			if !everReady {
				i.ready <- fmt.Errorf("%s: %s cannot start: %w", g.service, i.name, err)
				return
			}
			g.logs.add(i.name, fmt.Sprintf("fiat: cannot start again: %v", err))
		} else {
			began := time.Now()
			readyErr := i.probe(port, exited)
			switch {
			case readyErr == nil:
				everReady = true
				i.set(func() {
					i.state, i.serving = "ready", i.web
					if !i.web {
						i.state = "running"
					}
				})
				select {
				case i.ready <- nil:
				default:
				}
				g.publish()
			case !everReady:
				kill(cmd, exited, 0)
				i.set(func() { i.state = "failed" })
				i.ready <- fmt.Errorf("%s: %s %v; the end of its output:\n%s", g.service, i.name, readyErr, boot.lines(tailLines))
				return
			default: // started again, but not ready
				kill(cmd, exited, 0)
			}
			if readyErr == nil {
				select {
				case <-i.stop:
					i.set(func() { i.state, i.serving = "stopping", false })
					kill(cmd, exited, g.cfg.Process.StopTimeout)
					i.set(func() { i.state = "stopped" })
					return
				case <-exited:
				}
			}
			i.set(func() {
				i.state, i.serving = "crashed", false
				i.restarts++
			})
			g.publish()
			if time.Since(began) > stableFor {
				backoff = restartMin
			}
		}
		g.logs.add(i.name, fmt.Sprintf("fiat: %s exited; starting it again in %s", i.name, backoff))
		i.set(func() { i.state = "restarting in " + backoff.String() })
		select {
		case <-i.stop:
			i.set(func() { i.state = "stopped" })
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartMax)
	}
}

// start starts the instance's process on a free port; exited is closed
// when it exits.
func (i *instance) start(boot io.Writer) (*exec.Cmd, int, chan struct{}, error) {
	g := i.g
	port, err := ports.Free()
	if err != nil {
		return nil, 0, nil, err
	}
	join, unlimit, err := g.limits.prepare(fmt.Sprintf("%s-%s-%s-%d", g.service, g.id.Short(), i.name, time.Now().UnixNano()), g.cfg.Memory, g.owner)
	if err != nil {
		g.logs.add(i.name, fmt.Sprintf("fiat: runs without its limits: %v", err))
	}
	cmd := exec.Command("/bin/sh", "-c", join+"exec "+i.command)
	cmd.Dir = g.dir
	cmd.Env = g.environ()
	if i.web {
		cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: g.owner.credential()}
	// An *os.File, not StdoutPipe: the instance's exit is seen when its
	// process exits, even if a child it started holds the output open.
	out, w, err := os.Pipe()
	if err != nil {
		unlimit()
		return nil, 0, nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		unlimit()
		return nil, 0, nil, err
	}
	i.set(func() { i.pid, i.port, i.started = cmd.Process.Pid, port, time.Now() })
	go func() {
		g.logs.copy(i.name, out, boot)
		out.Close()
	}()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		unlimit()
		close(exited)
	}()
	return cmd, port, exited, nil
}

// environ is all an instance sees of the world: PATH, HOME, its
// service's config with the addresses of what it uses filled in and, for
// a web instance, PORT.
func (g *group) environ() []string {
	env := []string{"PATH=" + defaultPath, "HOME=" + g.dir}
	for key, value := range g.cfg.Environ() {
		env = append(env, key+"="+fiat.Interpolate(value, g.links.url))
	}
	return env
}

// probe waits for the instance on port to be ready: its health path
// answers 2xx or, with none, its port accepts a connection.
func (i *instance) probe(port int, exited chan struct{}) error {
	if !i.web {
		return nil // a worker is ready once it runs
	}
	cfg := i.g.cfg.Process
	addr := "127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.NewTimer(cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		if cfg.Health != "" {
			if resp, err := client.Get("http://" + addr + cfg.Health); err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 200 && resp.StatusCode < 300 {
					return nil
				}
			}
		} else if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-i.stop:
			return errors.New("was stopped before it was ready")
		case <-deadline.C:
			what := "did not accept connections on $PORT"
			if cfg.Health != "" {
				what = fmt.Sprintf("did not answer 2xx at health = %q", cfg.Health)
			}
			return fmt.Errorf("%s within start_timeout = %q", what, cfg.StartTimeout)
		case <-tick.C:
		}
	}
}

// kill sends SIGTERM to the process group of cmd and, after grace,
// SIGKILL, and waits for cmd to exit.
func kill(cmd *exec.Cmd, exited chan struct{}, grace time.Duration) {
	pgid := -cmd.Process.Pid
	if grace > 0 {
		syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-exited:
			syscall.Kill(pgid, syscall.SIGKILL) // what it left behind
			return
		case <-time.After(grace):
		}
	}
	syscall.Kill(pgid, syscall.SIGKILL)
	<-exited
}

// rss is the resident memory of process pid, from /proc.
func rss(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logBook keeps the last lines a group's instances wrote, and tells
// followers of new ones.
type logBook struct {
	version fiat.Hash
	// path is the file the lines are appended to, rotated at maxLogFile.
	path      string
	mu        sync.Mutex
	file      *os.File
	size      int64
	lines     []fiat.LogLine // a ring of maxLogLines
	start     int
	followers map[chan fiat.LogLine]struct{}
}

// maxLogLines and maxLineBytes bound what a group keeps of its output.
const (
	maxLogLines  = 1000
	maxLineBytes = 8 << 10
	// maxLogFile is the size at which a version's log file is renamed to
	// .1, replacing the one before, and started again.
	maxLogFile = 1 << 20
)

// newLogBook keeps a version's lines in memory and in the file at path,
// if path is not empty.
func newLogBook(version fiat.Hash, path string) *logBook {
	return &logBook{version: version, path: path, followers: map[chan fiat.LogLine]struct{}{}}
}

// write appends line to the log file. b.mu is held.
func (b *logBook) write(line fiat.LogLine) {
	if b.path == "" {
		return
	}
	if b.file == nil || b.size > maxLogFile {
		if b.file != nil {
			b.file.Close()
			os.Rename(b.path, b.path+".1")
		}
		os.MkdirAll(filepath.Dir(b.path), 0o700)
		f, err := os.OpenFile(b.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			b.path = "" // logs stay in memory only
			return
		}
		info, _ := f.Stat()
		b.file, b.size = f, info.Size()
	}
	n, _ := fmt.Fprintf(b.file, "%s %s %s\n", line.Time.UTC().Format(time.RFC3339Nano), line.Instance, line.Text)
	b.size += int64(n)
}

// close closes the log file.
func (b *logBook) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
}

// copy adds each line read from r, and writes it to also.
func (b *logBook) copy(instance string, r io.Reader, also io.Writer) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			also.Write(line)
			b.add(instance, strings.TrimRight(string(line), "\r\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (b *logBook) add(instance, text string) {
	line := fiat.LogLine{Time: time.Now(), Version: b.version, Instance: instance, Text: text}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.write(line)
	if len(b.lines) < maxLogLines {
		b.lines = append(b.lines, line)
	} else {
		b.lines[b.start] = line
		b.start = (b.start + 1) % maxLogLines
	}
	for f := range b.followers {
		select {
		case f <- line:
		default: // a follower that does not keep up misses lines, rather than hold up the instance
		}
	}
}

func (b *logBook) last(n int) []fiat.LogLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	ordered := append(slices.Clone(b.lines[b.start:]), b.lines[:b.start]...)
	return ordered[max(0, len(ordered)-n):]
}

func (b *logBook) follow(ctx context.Context) <-chan fiat.LogLine {
	ch := make(chan fiat.LogLine, 256)
	b.mu.Lock()
	b.followers[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.followers, ch)
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
