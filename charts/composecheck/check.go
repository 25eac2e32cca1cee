package composecheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Load reads a compose file the way `docker compose` does (interpolation with
// the variables' defaults, env files, extends, merge keys, schema validation),
// with paths resolved against root.
func Load(ctx context.Context, root, filename string, content []byte) (*types.Project, error) {
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, filename), Content: content}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("hourglass", true)
		o.ResolvePaths = true
	})
	if err != nil {
		return nil, fmt.Errorf("compose: load %s: %w", filename, err)
	}
	return p, nil
}

// Check returns every problem of a loaded project: unpinned images, build
// contexts, Dockerfile targets or COPY sources that do not exist, bind-mounted
// files and env files that do not exist, and services that talk to another
// service (host:port in their command, environment or mounted config files)
// without depending on it, directly or through another dependency.
func Check(p *types.Project, root string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		s := p.Services[name]
		if !pinned(s.Image) {
			add("service %s: image %q is not pinned to a version tag or digest", name, s.Image)
		}
		if s.Build != nil {
			dockerfile := s.Build.Dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(s.Build.Context, dockerfile)
			}
			if err := checkDockerfile(s.Build.Context, dockerfile, s.Build.Target); err != nil {
				add("service %s: build: %w", name, err)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				add("service %s: bind mount %s → %s: source does not exist in the repository", name, rel(root, v.Source), v.Target)
			}
		}
		for _, f := range s.EnvFiles {
			if _, err := os.Stat(f.Path); err != nil {
				add("service %s: env_file %s does not exist", name, rel(root, f.Path))
			}
		}
	}
	for _, name := range names {
		deps := closure(p, name)
		for _, peer := range talksTo(p, name) {
			if !deps[peer.service] {
				add("service %s talks to %s (%s) but does not depend on it", name, peer.service, peer.evidence)
			}
		}
	}
	return errs
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// pinned: a tag other than latest, or a digest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return ok && tag != "" && tag != "latest"
}

// checkDockerfile: the target stage exists and every COPY/ADD source from the
// build context exists.
func checkDockerfile(context, path, target string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dockerfile: %w", err)
	}
	defer f.Close()
	var errs []string
	stages := map[string]bool{}
	fromRE := regexp.MustCompile(`(?i)^FROM\s+\S+(\s+AS\s+(\S+))?`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := fromRE.FindStringSubmatch(line); m != nil {
			stages[strings.ToLower(m[2])] = true
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || (!strings.EqualFold(fields[0], "COPY") && !strings.EqualFold(fields[0], "ADD")) {
			continue
		}
		args := fields[1:]
		fromStage := false
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			fromStage = fromStage || strings.HasPrefix(args[0], "--from=")
			args = args[1:]
		}
		if fromStage {
			continue
		}
		for _, src := range args[:len(args)-1] {
			if _, err := os.Stat(filepath.Join(context, src)); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s %s: not in the build context", path, fields[0], src))
			}
		}
	}
	if target != "" && !stages[strings.ToLower(target)] {
		errs = append(errs, fmt.Sprintf("%s: no stage %q", path, target))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// closure is every service name reaches through depends_on.
func closure(p *types.Project, name string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for dep := range p.Services[n].DependsOn {
			if !seen[dep] {
				seen[dep] = true
				walk(dep)
			}
		}
	}
	walk(name)
	return seen
}

type peer struct{ service, evidence string }

// talksTo finds host:port mentions of other services in a service's command,
// entrypoint, environment and bind-mounted config files.
func talksTo(p *types.Project, name string) []peer {
	s := p.Services[name]
	texts := map[string]string{"command": strings.Join(s.Command, " "), "entrypoint": strings.Join(s.Entrypoint, " ")}
	var env []string
	for k, v := range s.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	slices.Sort(env)
	texts["environment"] = strings.Join(env, " ")
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if st, err := os.Stat(v.Source); err == nil && st.Mode().IsRegular() && st.Size() < 1<<20 {
			b, _ := os.ReadFile(v.Source)
			texts[filepath.Base(v.Source)] = string(b)
		}
	}
	for _, f := range s.EnvFiles {
		b, _ := os.ReadFile(f.Path)
		texts[filepath.Base(f.Path)] = string(b)
	}
	var out []peer
	for other := range p.Services {
		if other == name {
			continue
		}
		re := regexp.MustCompile(`(^|[\s/@"'=,\[])` + regexp.QuoteMeta(other) + `:\d+`)
		for _, where := range slices.Sorted(func(yield func(string) bool) {
			for k := range texts {
				if !yield(k) {
					return
				}
			}
		}) {
			if m := re.FindString(texts[where]); m != "" {
				out = append(out, peer{other, strings.TrimLeft(m, " /@\"'=,[") + " in " + where})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b peer) int { return strings.Compare(a.service, b.service) })
	return out
}
