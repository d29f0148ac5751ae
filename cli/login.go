package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2/maybe"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/server"
)

// login is what `fiat login` saves in the user's config: the server that
// later commands call when neither --server nor FIAT_SERVER names one, and
// its admin token.
type login struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// loginPath is where `fiat login` saves: $XDG_CONFIG_HOME/fiat/config.json
// on Linux, and the system's equivalent elsewhere.
func loginPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the user's config dir: %w", err)
	}
	return filepath.Join(dir, "fiat", "config.json"), nil
}

// savedLogin reads what `fiat login` saved; none, if it never ran.
func savedLogin() (login, string, error) {
	path, err := loginPath()
	if err != nil {
		return login{}, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return login{}, path, nil
	}
	var saved login
	if err == nil {
		err = json.Unmarshal(data, &saved)
	}
	if err != nil {
		return login{}, path, fmt.Errorf("cannot read %s: %w: fix it, or delete it and run `fiat login` again", path, err)
	}
	return saved, path, nil
}

// serverURL reads an admin API address: host:port, or a URL.
func serverURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return "", fmt.Errorf("%q is not the address of a fiat server's admin API: give host:port, like %s, or a URL, like http://%s", strings.TrimPrefix(addr, "http://"), server.Defaults.Admin, server.Defaults.Admin)
	}
	return u.Scheme + "://" + u.Host, nil
}

// client finds the server to call: --server, else FIAT_SERVER, else the one
// `fiat login` saved, else the default. It finds its token: FIAT_TOKEN,
// else the file FIAT_TOKEN_FILE names, else the token `fiat login` saved
// for that server, else the token file of a server started in this
// directory with the default data dir.
func (c *cli) client() (*api.Client, error) {
	saved, savedPath, err := savedLogin()
	if err != nil {
		return nil, err
	}
	addr := c.server
	for _, next := range []string{os.Getenv("FIAT_SERVER"), saved.Server, "http://" + server.Defaults.Admin} {
		if addr == "" {
			addr = next
		}
	}
	if c.server, err = serverURL(addr); err != nil {
		return nil, err
	}
	token, err := c.token(saved, savedPath)
	if err != nil {
		return nil, err
	}
	return &api.Client{Server: c.server, Token: token}, nil
}

func (c *cli) token(saved login, savedPath string) (string, error) {
	if token := os.Getenv("FIAT_TOKEN"); token != "" {
		c.tokenFrom = "FIAT_TOKEN"
		return token, nil
	}
	if path := os.Getenv("FIAT_TOKEN_FILE"); path != "" {
		c.tokenFrom = "FIAT_TOKEN_FILE (" + path + ")"
		return readToken(path, "FIAT_TOKEN_FILE")
	}
	if saved.Token != "" && saved.Server == c.server {
		c.tokenFrom = savedPath + " (saved by `fiat login`)"
		return saved.Token, nil
	}
	local := filepath.Join(server.Defaults.Data, server.TokenFile)
	if _, err := os.Stat(local); err == nil {
		c.tokenFrom = local
		return readToken(local, local)
	}
	return "", fmt.Errorf("no admin token for %s: FIAT_TOKEN and FIAT_TOKEN_FILE are not set, `fiat login` saved none for this server in %s, and there is no %s here; %s",
		c.server, savedPath, local, tokenHelp(c.server))
}

// tokenHelp says how to give the CLI the token of the server at addr.
func tokenHelp(addr string) string {
	return fmt.Sprintf("the token is in the server's <data>/%s (`fiat serve` says where): run `fiat login %s` and paste it, or set FIAT_TOKEN_FILE to that file", server.TokenFile, addr)
}

func readToken(path, name string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the admin token from %s: %w", name, err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("the admin token file %s is empty: give the file the server wrote, <data>/%s", path, server.TokenFile)
	}
	return token, nil
}

func (c *cli) loginCmd() *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Save the admin token of a server, checked, for the commands that follow; they call that server unless --server or FIAT_SERVER say otherwise",
		Long: "login asks for the admin token (the server keeps it in <data>/" + server.TokenFile + "; `fiat serve` says where), " +
			"or reads it from --token-file or standard input, checks it against the server, and saves the server and the token, " +
			"readable only by you, in your config dir (on Linux $XDG_CONFIG_HOME/fiat/config.json).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := argOr(args, c.server)
			if addr == "" {
				addr = "http://" + server.Defaults.Admin
			}
			addr, err := serverURL(addr)
			if err != nil {
				return err
			}
			c.server = addr
			token, err := c.askToken(tokenFile, addr)
			if err != nil {
				return err
			}
			client := &api.Client{Server: addr, Token: token}
			if _, err := client.Envs(cmd.Context()); err != nil {
				return err
			}
			path, err := saveLogin(login{Server: addr, Token: token})
			if err != nil {
				return err
			}
			c.print(map[string]string{"server": addr, "config": path}, func(w io.Writer) {
				fmt.Fprintf(w, "logged in to %s: saved its token in %s (readable only by you)\n", addr, path)
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the token from this file, e.g. the server's <data>/"+server.TokenFile)
	return cmd
}

// askToken reads the token from file, else from standard input: on a
// terminal it prompts and does not echo it.
func (c *cli) askToken(file, addr string) (string, error) {
	if file != "" {
		c.tokenFrom = file
		return readToken(file, file)
	}
	c.tokenFrom = "standard input"
	var token string
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(c.stderr, "admin token of %s (in the server's <data>/%s): ", addr, server.TokenFile)
		line, err := term.ReadPassword(fd)
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		token = string(line)
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		token = line
	}
	if token = strings.TrimSpace(token); token == "" {
		return "", fmt.Errorf("no token given: paste the token in the server's <data>/%s, or give the file with --token-file", server.TokenFile)
	}
	return token, nil
}

// saveLogin writes the user's config, readable only by them, in one step
// where renames are atomic.
func saveLogin(l login) (string, error) {
	path, err := loginPath()
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot save the login: %w", err)
	}
	// An older file keeps its mode through the write: make it private first.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot save the login: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cannot save the login: %w", err)
	}
	if err := maybe.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("cannot save the login: %w", err)
	}
	return path, nil
}
