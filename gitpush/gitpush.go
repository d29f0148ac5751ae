// Package gitpush deploys with `git push`: it serves git's smart HTTP
// protocol for pushes on the admin port, keeps each pushed repository
// under the data dir, and deploys the tree of each pushed branch's commit
// to the env the branch maps to, streaming the deploy's progress to the
// client as remote: lines. A refused deploy rejects the push with the
// reason, and the branch in fiat's repository stays where it was. The
// protocol's encoding and the object store are go-git's; fiat does not
// need the system's git.
package gitpush

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
)

// Deployer deploys a project to an env, as deploy.Deployer does.
type Deployer interface {
	Deploy(ctx context.Context, env string, bundle project.Bundle) (deploy.Result, error)
}

// Config is what a Handler needs.
type Config struct {
	// Dir holds the repositories, one bare repository per name.
	Dir      string
	Deployer Deployer
	// Branches says which env each pushed branch deploys to.
	Branches Branches
	// MaxBundle bounds the files of a pushed tree, as it does a bundle
	// `fiat deploy` sends.
	MaxBundle int64
	// MaxPush bounds one push's request body, MaxRepoBytes the disk one
	// repository takes, and MaxRepos how many there are.
	MaxPush      int64
	MaxRepoBytes int64
	MaxRepos     int
	Logger       *slog.Logger
}

// Defaults of the limits.
const (
	DefaultMaxPush      = 1 << 30
	DefaultMaxRepoBytes = 2 << 30
	DefaultMaxRepos     = 100
)

// Handler serves /git/NAME/info/refs and /git/NAME/git-receive-pack.
// Authenticating the client is the caller's.
func Handler(cfg Config) http.Handler {
	h := &handler{cfg: cfg, locks: map[string]*sync.Mutex{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /git/{repo}/info/refs", h.advertise)
	mux.HandleFunc("POST /git/{repo}/git-receive-pack", h.receive)
	mux.HandleFunc("/git/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "fiat serves git pushes only: git push to http://HOST/git/NAME (a clone or fetch of it is not served)", http.StatusNotFound)
	})
	return mux
}

type handler struct {
	cfg   Config
	mu    sync.Mutex
	locks map[string]*sync.Mutex // one push at a time per repository
}

const receivePack = "git-receive-pack"

// noThin asks the client for a pack that holds every object its deltas
// name (go-git has no constant for it).
const noThin capability.Capability = "no-thin"

// repoName is the repository a request names, without a ".git" suffix.
func repoName(r *http.Request) (string, error) {
	name := strings.TrimSuffix(r.PathValue("repo"), ".git")
	if err := fiat.CheckEnvName(name); err != nil {
		return "", fmt.Errorf("repository name %q: %s", name, strings.Replace(err.Error(), "env name", "name", 1))
	}
	return name, nil
}

// advertise answers the first request of a push: the branches fiat's
// repository has, and what this server can do.
func (h *handler) advertise(w http.ResponseWriter, r *http.Request) {
	if service := r.URL.Query().Get("service"); service != receivePack {
		http.Error(w, fmt.Sprintf("fiat serves git pushes only (service=%s), not %q: use git push", receivePack, service), http.StatusForbidden)
		return
	}
	name, err := repoName(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ar := packp.NewAdvRefs()
	// no-thin: a thin pack's deltas name objects only the repository has,
	// which go-git's pack writer cannot index.
	for _, c := range []capability.Capability{capability.ReportStatus, capability.Sideband64k, capability.OFSDelta, capability.DeleteRefs, noThin} {
		ar.Capabilities.Set(c)
	}
	ar.Capabilities.Set(capability.Agent, "fiat")
	if _, err := os.Stat(h.path(name)); err == nil {
		refs, err := storage(h.path(name)).IterReferences()
		if err != nil {
			http.Error(w, "fiat cannot read the repository: "+err.Error(), http.StatusInternalServerError)
			return
		}
		refs.ForEach(func(ref *plumbing.Reference) error {
			if ref.Type() == plumbing.HashReference && ref.Name().IsBranch() {
				ar.AddReference(ref)
			}
			return nil
		})
	}
	ar.Prefix = [][]byte{[]byte("# service=" + receivePack), pktline.Flush}
	w.Header().Set("Content-Type", "application/x-"+receivePack+"-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	if err := ar.Encode(w); err != nil {
		h.cfg.Logger.Warn("git: cannot send the refs", "repo", name, "err", err)
	}
}

func (h *handler) path(name string) string { return filepath.Join(h.cfg.Dir, name+".git") }

// storage is the bare repository at dir, made if it is new.
func storage(dir string) *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(dir, osfs.WithBoundOS()), cache.NewObjectLRUDefault())
}

// lock serializes the pushes to one repository.
func (h *handler) lock(name string) func() {
	h.mu.Lock()
	l, ok := h.locks[name]
	if !ok {
		l = &sync.Mutex{}
		h.locks[name] = l
	}
	h.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// receive takes a push: stores its objects, deploys each branch it
// updates, and updates the branches whose deploy succeeded.
func (h *handler) receive(w http.ResponseWriter, r *http.Request) {
	name, err := repoName(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		http.Error(w, "fiat takes pushes without Content-Encoding: gzip: git sends them so unless told otherwise", http.StatusUnsupportedMediaType)
		return
	}
	defer h.lock(name)()
	body := &limitedBody{r: r.Body, left: h.cfg.MaxPush, rc: http.NewResponseController(w)}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(body); err != nil {
		http.Error(w, "fiat cannot read the push: "+err.Error(), http.StatusBadRequest)
		return
	}
	out := newReply(w, req.Capabilities.Supports(capability.Sideband64k))
	status := packp.NewReportStatus()
	status.UnpackStatus = "ok"
	repo, err := h.open(name)
	if err == nil && needsPack(req) {
		if err = packfile.UpdateObjectStorage(repo, req.Packfile); err != nil && body.over {
			err = fmt.Errorf("the push is over fiat's limit of %d bytes: push less at once, or leave large files out of the repository", h.cfg.MaxPush)
		}
	}
	if err != nil {
		// Nothing was deployed: git shows the reason.
		out.progress("fiat: " + err.Error())
		status.UnpackStatus = oneLine(err.Error())
		for _, cmd := range req.Commands {
			status.CommandStatuses = append(status.CommandStatuses, &packp.CommandStatus{ReferenceName: cmd.Name, Status: "not deployed"})
		}
		out.finish(status)
		return
	}
	for _, cmd := range req.Commands {
		reason := h.update(r.Context(), repo, cmd, out)
		cs := &packp.CommandStatus{ReferenceName: cmd.Name, Status: "ok"}
		if reason != "" {
			cs.Status = oneLine(reason)
		}
		status.CommandStatuses = append(status.CommandStatuses, cs)
	}
	out.finish(status)
}

// needsPack reports whether req sends objects: every command but a
// deletion does.
func needsPack(req *packp.ReferenceUpdateRequest) bool {
	for _, cmd := range req.Commands {
		if cmd.Action() != packp.Delete {
			return true
		}
	}
	return false
}

// open opens the repository name, making it if it is new and there is
// room for it, and refuses one that has grown over its limit.
func (h *handler) open(name string) (*filesystem.Storage, error) {
	dir := h.path(name)
	_, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		entries, err := os.ReadDir(h.cfg.Dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if len(entries) >= h.cfg.MaxRepos {
			return nil, fmt.Errorf("fiat keeps at most %d pushed repositories and has them: push to one of them, or delete one under %s", h.cfg.MaxRepos, h.cfg.Dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		repo := storage(dir)
		return repo, repo.Init()
	}
	if err != nil {
		return nil, err
	}
	repo := storage(dir)
	size, err := dirSize(dir)
	if err != nil {
		return nil, err
	}
	if size > h.cfg.MaxRepoBytes {
		return nil, fmt.Errorf("repository %s takes %d bytes, over fiat's limit of %d: delete %s (what serves keeps serving) and push again", name, size, h.cfg.MaxRepoBytes, dir)
	}
	return repo, nil
}

func dirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	return size, err
}

// update deploys cmd's commit to the env its branch maps to and, if the
// deploy succeeds, moves the branch. It returns why it did not, or "".
func (h *handler) update(ctx context.Context, repo *filesystem.Storage, cmd *packp.Command, out *reply) string {
	branch := cmd.Name.Short()
	if !cmd.Name.IsBranch() {
		return "fiat deploys branches (refs/heads/...), not " + cmd.Name.String()
	}
	env, err := h.cfg.Branches.Env(branch)
	if err != nil {
		return err.Error()
	}
	current, err := repo.Reference(cmd.Name)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		current = plumbing.NewHashReference(cmd.Name, plumbing.ZeroHash)
	case err != nil:
		return err.Error()
	}
	if current.Hash() != cmd.Old {
		return "fetch first: the branch moved since your git read it"
	}
	if cmd.Action() == packp.Delete {
		return "fiat does not delete a deployed branch: env " + env + " keeps serving; `fiat env delete " + env + "` removes the env"
	}
	bundle, err := bundleOf(repo, cmd.New, h.cfg.MaxBundle)
	if err != nil {
		out.progress("fiat: " + err.Error())
		return err.Error()
	}
	out.progress(fmt.Sprintf("fiat: deploying %s (%s) to env %s", branch, cmd.New.String()[:12], env))
	res, err := h.cfg.Deployer.Deploy(deploy.WithProgress(ctx, func(line string) { out.progress("fiat: " + line) }), env, bundle)
	if err != nil {
		var problems fiat.Problems
		if errors.As(err, &problems) {
			out.progress(fmt.Sprintf("fiat: deploy refused, %d problem(s); env %s keeps serving what it did:", len(problems), env))
			for _, p := range problems {
				for _, line := range strings.Split(p.String(), "\n") {
					out.progress("  " + line)
				}
			}
			return "deploy refused: " + problems[0].String()
		}
		out.progress("fiat: deploy failed: " + err.Error())
		return "deploy failed: " + err.Error()
	}
	for _, s := range res.Services {
		state := "unchanged"
		if s.Changed {
			state = "changed: " + s.Why
		}
		out.progress(fmt.Sprintf("fiat: %s %s %s %s", s.Name, s.Version.Short(), state, s.URL))
	}
	if err := repo.SetReference(plumbing.NewHashReference(cmd.Name, cmd.New)); err != nil {
		out.progress("fiat: deployed, but the branch could not be moved in fiat's repository: " + err.Error())
		return "deployed, but the branch was not moved: " + err.Error()
	}
	out.progress(fmt.Sprintf("fiat: %s is live in %s (%.1f ms)", branch, env, res.DeployMS))
	return ""
}

// bundleOf is the project at commit id's tree, as `fiat deploy` would
// send it, within the limits of a bundle.
func bundleOf(repo storer.EncodedObjectStorer, id plumbing.Hash, maxBundle int64) (project.Bundle, error) {
	commit, err := object.GetCommit(repo, id)
	if err != nil {
		return project.Bundle{}, fmt.Errorf("commit %s: %w", id, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return project.Bundle{}, fmt.Errorf("commit %s: %w", id, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTree(pw, tree)) }()
	b, err := project.ReadTar(pr, maxBundle)
	pr.CloseWithError(errors.New("read enough"))
	return b, err
}

// writeTree writes the files of tree as a tar stream.
func writeTree(w io.Writer, tree *object.Tree) error {
	tw := tar.NewWriter(w)
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		path, entry, err := walker.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch entry.Mode {
		case filemode.Dir:
			continue
		case filemode.Symlink:
			return fmt.Errorf("%s is a symbolic link: fiat deploys files; commit the file it points to instead", path)
		case filemode.Submodule:
			return fmt.Errorf("%s is a submodule: fiat deploys the files of the pushed repository; vendor what the submodule holds", path)
		}
		blob, err := tree.TreeEntryFile(&entry)
		if err != nil {
			// A subtree's entry: read it through the repository.
			return fmt.Errorf("%s: %w", path, err)
		}
		mode := int64(0o644)
		if entry.Mode == filemode.Executable {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: path, Mode: mode, Size: blob.Size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		rd, err := blob.Reader()
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, rd)
		rd.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// oneLine is s as a report-status reason, which is one line.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// limitedBody reads a push's body up to left bytes, giving the client as
// long as it keeps sending: a push is the admin token's holder's, and a
// large one takes a while.
type limitedBody struct {
	r    io.Reader
	left int64
	over bool
	rc   *http.ResponseController
}

// pushReadWindow is how long a push may send nothing.
const pushReadWindow = time.Minute

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.over = true
		return 0, errors.New("the push is over fiat's limit")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.rc.SetReadDeadline(time.Now().Add(pushReadWindow))
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// reply writes a push's answer: progress on side band 2, if the client
// asked for side bands, and the report status.
type reply struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	mux      *sideband.Muxer
	sideband bool
	started  bool
}

func newReply(w http.ResponseWriter, sideband64k bool) *reply {
	r := &reply{w: w, rc: http.NewResponseController(w), sideband: sideband64k}
	if sideband64k {
		r.mux = sideband.NewMuxer(sideband.Sideband64k, w)
	}
	return r
}

// pushWriteWindow is how long the client has to take each line.
const pushWriteWindow = time.Minute

func (r *reply) begin() {
	if !r.started {
		r.started = true
		r.w.Header().Set("Content-Type", "application/x-"+receivePack+"-result")
		r.w.Header().Set("Cache-Control", "no-cache")
	}
	r.rc.SetWriteDeadline(time.Now().Add(pushWriteWindow))
}

// progress sends one line to the client, which shows it as remote: line.
func (r *reply) progress(line string) {
	if !r.sideband {
		return
	}
	r.begin()
	r.mux.WriteChannel(sideband.ProgressMessage, []byte(line+"\n"))
	r.rc.Flush()
}

// finish sends the report status.
func (r *reply) finish(status *packp.ReportStatus) {
	r.begin()
	if !r.sideband {
		status.Encode(r.w)
		return
	}
	var buf bytes.Buffer
	status.Encode(&buf)
	r.mux.Write(buf.Bytes())
	pktline.NewEncoder(r.w).Flush()
	r.rc.Flush()
}
