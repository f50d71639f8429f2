package deploy

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// serveFields are the fields `sluice serve --config` accepts: the json tags
// of serveConfig in internal/cli/serve.go, plus store. A config here with
// any other key would make serve refuse to start, so a key must be added
// here (after serve reads it) before a definition may use it.
var serveFields = []string{
	"apiAddr", "dataDir", "logFormat", "groupSessionTimeout", "sleepAfter", "memberName",
	"tlsCertFile", "tlsKeyFile", "awsLambda",
	"store",
}

// pendingFields are serveFields that serve.go does not read yet (none
// now): a manifest may be written ahead of the field it needs.
var pendingFields = []string{}

const (
	k8sDir        = "kubernetes"
	configPath    = "/etc/sluice/sluice.yaml" // where image, StatefulSet and unit all expect the config
	maxSession    = 10 * time.Second          // a killed process's partitions move within ~10 s
	minStopGrace  = 30                        // seconds: the server's stop grace plus its final commit, with room
	memberNameEnv = "SLUICE_MEMBER_NAME"
)

type manifest struct {
	file string
	doc  map[string]any
}

// loadManifests parses every YAML document under kubernetes/, split on
// "---" lines as kubectl does, skipping documents that are only comments.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML under %s: %v", k8sDir, err)
	}
	var ms []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, part := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			if doc == nil {
				continue
			}
			ms = append(ms, manifest{file: filepath.Base(f), doc: doc})
		}
	}
	return ms
}

// at walks maps by key and lists by decimal index; nil when absent.
func at(v any, keys ...string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, keys ...string) string { s, _ := at(v, keys...).(string); return s }
func list(v any, keys ...string) []any { l, _ := at(v, keys...).([]any); return l }
func num(v any, keys ...string) (float64, bool) {
	n, ok := at(v, keys...).(float64) // sigs.k8s.io/yaml goes through JSON
	return n, ok
}

func strs(l []any) []string {
	var out []string
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// one returns the only manifest of kind (and name, if not empty).
func one(t *testing.T, ms []manifest, kind, name string) manifest {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if str(m.doc, "kind") == kind && (name == "" || str(m.doc, "metadata", "name") == name) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q under %s, found %d", kind, name, k8sDir, len(found))
	}
	return found[0]
}

func TestManifestsHaveIdentity(t *testing.T) {
	for _, m := range loadManifests(t) {
		for _, k := range []string{"apiVersion", "kind"} {
			if str(m.doc, k) == "" {
				t.Errorf("%s: a document has no %s", m.file, k)
			}
		}
		if str(m.doc, "metadata", "name") == "" {
			t.Errorf("%s: %s has no metadata.name", m.file, str(m.doc, "kind"))
		}
		// The namespace comes from kustomization.yaml alone, so a
		// different one there moves everything together.
		if ns := str(m.doc, "metadata", "namespace"); ns != "" {
			t.Errorf("%s: %s sets metadata.namespace %q: leave it to kustomization.yaml", m.file, str(m.doc, "kind"), ns)
		}
	}
}

// container returns the StatefulSet's sluice container.
func container(t *testing.T, sts manifest) map[string]any {
	t.Helper()
	for _, c := range list(sts.doc, "spec", "template", "spec", "containers") {
		if str(c, "name") == "sluice" {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s: no container named sluice", sts.file)
	return nil
}

func TestStatefulSet(t *testing.T) {
	ms := loadManifests(t)
	sts := one(t, ms, "StatefulSet", "")
	spec := at(sts.doc, "spec")
	pod := at(spec, "template", "spec")
	c := container(t, sts)

	if n, _ := num(spec, "replicas"); n < 3 {
		t.Errorf("replicas %v: want at least 3", n)
	}
	if p := str(spec, "podManagementPolicy"); p != "Parallel" {
		t.Errorf("podManagementPolicy %q: want Parallel", p)
	}
	if g, _ := num(pod, "terminationGracePeriodSeconds"); g < minStopGrace {
		t.Errorf("terminationGracePeriodSeconds %v: want at least %d, or Kubernetes kills in-flight batches", g, minStopGrace)
	}

	// The governing Service must exist and be headless.
	headless := one(t, ms, "Service", str(spec, "serviceName"))
	if str(headless.doc, "spec", "clusterIP") != "None" {
		t.Errorf("Service %s (serviceName): want clusterIP: None", str(spec, "serviceName"))
	}
	labels, _ := at(spec, "template", "metadata", "labels").(map[string]any)
	matches := func(sel any) bool {
		m, _ := sel.(map[string]any)
		if len(m) == 0 {
			return false
		}
		for k, v := range m {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(at(spec, "selector", "matchLabels")) {
		t.Errorf("selector.matchLabels does not match the pod template's labels %v", labels)
	}
	for _, m := range ms {
		if str(m.doc, "kind") == "Service" && !matches(at(m.doc, "spec", "selector")) {
			t.Errorf("%s: Service %s selects no sluice pod", m.file, str(m.doc, "metadata", "name"))
		}
	}

	// It runs `serve --config`, through the image's ENTRYPOINT.
	if cmd := list(c, "command"); cmd != nil && !slices.Equal(strs(cmd), []string{"/sluice"}) {
		t.Errorf("command %v: leave it to the image's ENTRYPOINT, or /sluice", cmd)
	}
	if str(c, "image") == "" {
		t.Error("the container has no image")
	}
	if args := strs(list(c, "args")); !slices.Equal(args, []string{"serve", "--config", configPath}) {
		t.Errorf("args %q: want serve --config %s", args, configPath)
	}

	// The config file it names is a key of the ConfigMap mounted there.
	cm := one(t, ms, "ConfigMap", "")
	mounts := map[string]string{} // volume name → mount path
	for _, vm := range list(c, "volumeMounts") {
		mounts[str(vm, "name")] = str(vm, "mountPath")
	}
	var configMounted, dataMounted bool
	cfg := serveConfig(t, cm.file, str(cm.doc, "data", path.Base(configPath)))
	dataDir := str(cfg, "dataDir")
	for _, v := range list(pod, "volumes") {
		mp := mounts[str(v, "name")]
		if str(v, "configMap", "name") == str(cm.doc, "metadata", "name") && mp == path.Dir(configPath) {
			configMounted = true
		}
		if at(v, "emptyDir") != nil && mp == dataDir {
			dataMounted = true
		}
	}
	if !configMounted {
		t.Errorf("no volume mounts ConfigMap %s at %s", str(cm.doc, "metadata", "name"), path.Dir(configPath))
	}
	if !dataMounted {
		t.Errorf("dataDir %q is not an emptyDir mount: the root filesystem is read-only", dataDir)
	}

	// Probes: the open endpoints, on the API's port.
	var portName string
	var port float64
	for _, p := range list(c, "ports") {
		if n, _ := num(p, "containerPort"); n == 8080 {
			portName, port = str(p, "name"), n
		}
	}
	if port == 0 {
		t.Fatal("no containerPort 8080")
	}
	if _, p, _ := net.SplitHostPort(str(cfg, "apiAddr")); p != "8080" {
		t.Errorf("the config's apiAddr port %q is not the containerPort 8080", p)
	}
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		p := at(c, probe)
		if got := str(p, "httpGet", "path"); got != want {
			t.Errorf("%s path %q: want %s", probe, got, want)
		}
		switch pp := at(p, "httpGet", "port").(type) {
		case string:
			if pp != portName {
				t.Errorf("%s port %q is not the container port's name %q", probe, pp, portName)
			}
		case float64:
			if pp != port {
				t.Errorf("%s port %v is not the container port %v", probe, pp, port)
			}
		default:
			t.Errorf("%s has no httpGet port", probe)
		}
		if n, _ := num(p, "periodSeconds"); n < 1 || n > 60 {
			t.Errorf("%s periodSeconds %v: want 1–60", probe, n)
		}
		if n, _ := num(p, "timeoutSeconds"); n < 1 {
			t.Errorf("%s timeoutSeconds %v: want at least 1", probe, n)
		}
	}

	// Each replica's member name is its pod name.
	var member bool
	for _, e := range list(c, "env") {
		if str(e, "name") == memberNameEnv {
			member = str(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.name"
		}
	}
	if !member {
		t.Errorf("env %s must come from fieldRef metadata.name (the pod name)", memberNameEnv)
	}

	// The credentials come from the Secret the example defines.
	secret := one(t, ms, "Secret", "")
	var fromSecret bool
	for _, e := range list(c, "envFrom") {
		fromSecret = fromSecret || str(e, "secretRef", "name") == str(secret.doc, "metadata", "name")
	}
	if !fromSecret {
		t.Errorf("envFrom does not name Secret %s", str(secret.doc, "metadata", "name"))
	}

	if at(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("the pod's securityContext lacks runAsNonRoot: true")
	}
	if at(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("the container's securityContext lacks readOnlyRootFilesystem: true")
	}
	for _, k := range []string{"requests", "limits"} {
		for _, r := range []string{"cpu", "memory"} {
			if at(c, "resources", k, r) == nil {
				t.Errorf("resources.%s.%s is not set", k, r)
			}
		}
	}
}

func TestSecretIsAnExample(t *testing.T) {
	secret := one(t, loadManifests(t), "Secret", "")
	if secret.file != "secret.example.yaml" {
		t.Errorf("the Secret is in %s: keep it in secret.example.yaml, out of the kustomization", secret.file)
	}
	for _, k := range []string{"SLUICE_MASTER_KEY", "PGPASSWORD"} {
		v := str(secret.doc, "stringData", k)
		if !strings.Contains(v, "EXAMPLE") {
			t.Errorf("stringData.%s %q: want a placeholder saying EXAMPLE", k, v)
		}
	}
	// A placeholder that decodes to a key could be taken for one.
	if b, err := base64.StdEncoding.DecodeString(str(secret.doc, "stringData", "SLUICE_MASTER_KEY")); err == nil && len(b) == 32 {
		t.Error("the example SLUICE_MASTER_KEY is a usable key: use a placeholder")
	}
	if d := at(secret.doc, "data"); d != nil {
		t.Error("the example Secret has data: (base64 values hide what they are); use stringData placeholders")
	}
}

// serveConfig parses a serve config as serve would (unknown keys are an
// error) and checks what every shared config here must have.
func serveConfig(t *testing.T, where, text string) map[string]any {
	t.Helper()
	if text == "" {
		t.Fatalf("%s: no serve config", where)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("%s: the serve config does not parse: %v", where, err)
	}
	for k := range cfg {
		if !slices.Contains(serveFields, k) {
			t.Errorf("%s: unknown serve config field %q (serve refuses to start): the fields are %s", where, k, strings.Join(serveFields, ", "))
		}
	}
	store := str(cfg, "store")
	u, err := url.Parse(store)
	switch {
	case !strings.HasPrefix(store, "postgres://") || err != nil:
		t.Errorf("%s: store %q: want a postgres:// URL", where, store)
	case u.User == nil || u.User.Username() == "":
		t.Errorf("%s: store %q names no user", where, store)
	default:
		if _, ok := u.User.Password(); ok {
			t.Errorf("%s: store has a password: use PGPASSWORD from a secret", where)
		}
		if u.Query().Get("sslmode") != "require" && u.Query().Get("sslmode") != "verify-full" {
			t.Errorf("%s: store %q: want sslmode=require (or verify-full): the password crosses the network", where, store)
		}
	}
	d, err := time.ParseDuration(str(cfg, "groupSessionTimeout"))
	if err != nil || d < time.Second || d > maxSession {
		t.Errorf("%s: groupSessionTimeout %q: want a duration of 1s–%s (%v)", where, str(cfg, "groupSessionTimeout"), maxSession, err)
	}
	// One file for every process: a memberName in it would give them all
	// one name, and they would fence each other.
	if _, ok := cfg["memberName"]; ok {
		t.Errorf("%s: memberName in a shared config: set SLUICE_MEMBER_NAME per process", where)
	}
	if host, _, err := net.SplitHostPort(str(cfg, "apiAddr")); err != nil || host != "0.0.0.0" {
		t.Errorf("%s: apiAddr %q: want 0.0.0.0:PORT, reachable by probes and peers", where, str(cfg, "apiAddr"))
	}
	if f := str(cfg, "logFormat"); f != "json" {
		t.Errorf("%s: logFormat %q: want json, for log collectors", where, f)
	}
	if str(cfg, "dataDir") == "" {
		t.Errorf("%s: no dataDir: the default ./.sluice is relative to a working directory nobody chose", where)
	}
	return cfg
}

func TestConfigMap(t *testing.T) {
	cm := one(t, loadManifests(t), "ConfigMap", "")
	serveConfig(t, cm.file, str(cm.doc, "data", path.Base(configPath)))
}

// TestServeFieldsMatchServe keeps serveFields honest: each must be a field
// serve.go reads, except the pending ones. It reads the source rather than
// importing internal/cli, which would not tell unexported fields anyway.
func TestServeFieldsMatchServe(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "internal", "cli", "serve.go"))
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`(?s)type serveConfig struct \{(.*?)\n\}`).FindSubmatch(src)
	if body == nil {
		t.Fatal("internal/cli/serve.go has no `type serveConfig struct`: update this test to find serve's config fields")
	}
	var have []string
	for _, m := range regexp.MustCompile(`json:"([^",]+)`).FindAllSubmatch(body[1], -1) {
		have = append(have, string(m[1]))
	}
	for _, f := range serveFields {
		switch {
		case slices.Contains(have, f) && slices.Contains(pendingFields, f):
			t.Logf("serve.go now reads %s: drop it from pendingFields", f)
		case !slices.Contains(have, f) && !slices.Contains(pendingFields, f):
			t.Errorf("serveFields has %q, which serve.go's serveConfig does not (it has %s)", f, strings.Join(have, ", "))
		case !slices.Contains(have, f):
			t.Logf("serve.go does not read %s yet: the definitions here need it", f)
		}
	}
}

func TestScaledObject(t *testing.T) {
	ms := loadManifests(t)
	so := one(t, ms, "ScaledObject", "")
	sts := one(t, ms, "StatefulSet", "")
	if v := str(so.doc, "apiVersion"); v != "keda.sh/v1alpha1" {
		t.Errorf("apiVersion %q: want keda.sh/v1alpha1", v)
	}
	ref := at(so.doc, "spec", "scaleTargetRef")
	if str(ref, "kind") != "StatefulSet" || str(ref, "name") != str(sts.doc, "metadata", "name") {
		t.Errorf("scaleTargetRef %v: want StatefulSet %s", ref, str(sts.doc, "metadata", "name"))
	}
	lo, _ := num(so.doc, "spec", "minReplicaCount")
	hi, _ := num(so.doc, "spec", "maxReplicaCount")
	if lo < 1 || hi < lo {
		t.Errorf("minReplicaCount %v, maxReplicaCount %v: want 1 ≤ min ≤ max", lo, hi)
	}
	var prom bool
	for _, tr := range list(so.doc, "spec", "triggers") {
		if str(tr, "type") != "prometheus" {
			continue
		}
		prom = true
		if q := str(tr, "metadata", "query"); !strings.Contains(q, "sluice_offset_lag") {
			t.Errorf("the prometheus trigger's query %q does not use sluice_offset_lag", q)
		}
		if _, err := url.ParseRequestURI(str(tr, "metadata", "serverAddress")); err != nil {
			t.Errorf("serverAddress: %v", err)
		}
		if n, err := strconv.ParseFloat(str(tr, "metadata", "threshold"), 64); err != nil || n <= 0 {
			t.Errorf("threshold %q: want a positive number (a string, as KEDA wants)", str(tr, "metadata", "threshold"))
		}
	}
	if !prom {
		t.Error("no prometheus trigger")
	}
}

func TestKustomizationListsEveryFile(t *testing.T) {
	ms := loadManifests(t)
	k := one(t, ms, "Kustomization", "")
	listed := strs(list(k.doc, "resources"))
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	for _, f := range files {
		f = filepath.Base(f)
		switch in := slices.Contains(listed, f); {
		case f == "kustomization.yaml":
		case strings.HasSuffix(f, ".example.yaml"):
			// Applying the example Secret would overwrite the real one
			// with placeholders.
			if in {
				t.Errorf("kustomization.yaml lists %s: examples must not be applied", f)
			}
		case !in:
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	for _, r := range listed {
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
	if ns := one(t, ms, "Namespace", ""); str(k.doc, "namespace") != str(ns.doc, "metadata", "name") {
		t.Errorf("kustomization namespace %q is not the Namespace %q", str(k.doc, "namespace"), str(ns.doc, "metadata", "name"))
	}
	// The image the StatefulSet names is the one images: rewrites.
	image := str(container(t, one(t, ms, "StatefulSet", "")), "image")
	var rewritten bool
	for _, im := range list(k.doc, "images") {
		rewritten = rewritten || str(im, "name") == image
	}
	if !rewritten {
		t.Errorf("kustomization images: does not rewrite the StatefulSet's image %q", image)
	}
}

// unit parses a systemd unit file: section → key → values, in order (keys
// such as ExecStart may repeat). Backslash continuations join lines.
func unit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]map[string][]string{}
	var section, pending string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if sections[section] == nil {
				sections[section] = map[string][]string{}
			}
		case section == "":
			t.Fatalf("%s:%d: %q before any [Section]", file, n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: %q is not KEY=VALUE", file, n, line)
			}
			k = strings.TrimSpace(k)
			sections[section][k] = append(sections[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

func TestSystemd(t *testing.T) {
	u := unit(t, filepath.Join("systemd", "sluice.service"))
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("sluice.service has no [%s]", s)
		}
	}
	svc := u["Service"]
	last := func(k string) string {
		if v := svc[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	if f := strings.Fields(last("ExecStart")); len(f) < 4 || path.Base(f[0]) != "sluice" || !slices.Equal(f[1:], []string{"serve", "--config", configPath}) {
		t.Errorf("ExecStart %q: want …/sluice serve --config %s", last("ExecStart"), configPath)
	}
	if r := last("Restart"); r == "" || r == "no" {
		t.Errorf("Restart=%q: want a restart policy (on-failure)", r)
	}
	if s := last("KillSignal"); s != "SIGTERM" {
		t.Errorf("KillSignal=%q: want SIGTERM, the graceful stop", s)
	}
	if d, err := time.ParseDuration(strings.TrimSpace(last("TimeoutStopSec")) + "s"); err != nil || d < minStopGrace*time.Second {
		t.Errorf("TimeoutStopSec=%q: want at least %d (seconds)", last("TimeoutStopSec"), minStopGrace)
	}
	if last("EnvironmentFile") == "" {
		t.Error("no EnvironmentFile= for SLUICE_MASTER_KEY and PGPASSWORD")
	}
	if user := last("User"); user == "" || user == "root" || user == "0" {
		t.Errorf("User=%q: want an unprivileged user", user)
	}
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"} {
		if last(k) != want {
			t.Errorf("%s=%q: want %s", k, last(k), want)
		}
	}

	// Its config: the same rules as the ConfigMap's, and its dataDir must
	// be writable under ProtectSystem=strict.
	b, err := os.ReadFile(filepath.Join("systemd", "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := serveConfig(t, "systemd/sluice.yaml", string(b))
	if dd := str(cfg, "dataDir"); !slices.Contains(strings.Fields(strings.Join(svc["ReadWritePaths"], " ")), dd) {
		t.Errorf("ReadWritePaths=%q does not include dataDir %s", svc["ReadWritePaths"], dd)
	}
}

// dockerfile returns the instructions, continuation lines joined, as
// [INSTRUCTION, rest] pairs.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		cur += " " + trimmed
		if strings.HasSuffix(trimmed, `\`) {
			cur = strings.TrimSuffix(cur, `\`)
			continue
		}
		instr, rest, _ := strings.Cut(strings.TrimSpace(cur), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(rest)})
		cur = ""
	}
	return out
}

func TestDockerfile(t *testing.T) {
	instrs := dockerfile(t)
	var builder, final string // stage names / images
	var built, copied, exposed bool
	var entrypoint, cmd []string
	var user string
	for _, in := range instrs {
		switch in[0] {
		case "FROM":
			f := strings.Fields(in[1])
			final = f[0]
			if strings.HasPrefix(f[0], "golang:") && len(f) == 3 && strings.EqualFold(f[1], "AS") {
				builder = f[2]
				goModVersion(t, strings.TrimPrefix(f[0], "golang:"))
			}
			entrypoint, cmd, user = nil, nil, "" // per stage
		case "RUN":
			if strings.Contains(in[1], "go build") && strings.Contains(in[1], "./cmd/sluice") && strings.Contains(in[1], "-o /sluice") {
				built = true
				if !strings.Contains(in[1], "CGO_ENABLED=0") {
					t.Error("go build without CGO_ENABLED=0: the static runtime image has no libc")
				}
			}
		case "COPY":
			copied = copied || (builder != "" && strings.Contains(in[1], "--from="+builder) && strings.HasSuffix(in[1], " /sluice"))
		case "ENTRYPOINT":
			entrypoint = execForm(t, in)
		case "CMD":
			cmd = execForm(t, in)
		case "EXPOSE":
			exposed = exposed || slices.Contains(strings.Fields(in[1]), "8080")
		case "USER":
			user = in[1]
		}
	}
	switch {
	case builder == "":
		t.Error("no `FROM golang:… AS NAME` builder stage")
	case strings.HasPrefix(final, "golang:"):
		t.Error("the final stage is the Go toolchain image: want a small runtime image")
	case !built:
		t.Error("no RUN go build -o /sluice ./cmd/sluice")
	case !copied:
		t.Errorf("the final stage does not COPY --from=%s … /sluice", builder)
	}
	if !exposed {
		t.Error("no EXPOSE 8080")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("USER %q in the final stage: want a non-root user", user)
	}
	if !slices.Equal(entrypoint, []string{"/sluice"}) {
		t.Errorf("ENTRYPOINT %q: want [\"/sluice\"]", entrypoint)
	}
	if !slices.Equal(cmd, []string{"serve", "--config", configPath}) {
		t.Errorf("CMD %q: want serve --config %s", cmd, configPath)
	}
	// The driver must stay pure Go for CGO_ENABLED=0.
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mod), "mattn/go-sqlite3") {
		t.Error("go.mod requires mattn/go-sqlite3, which needs cgo: the Dockerfile's CGO_ENABLED=0 build would break")
	}
}

// execForm parses a JSON-array (exec form) instruction: the shell form
// would run through /bin/sh, which distroless lacks, and would not pass
// SIGTERM to sluice.
func execForm(t *testing.T, in [2]string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in[1]), &args); err != nil {
		t.Errorf("%s %s: want the exec form, a JSON array: %v", in[0], in[1], err)
	}
	return args
}

// goModVersion checks the builder's Go (major.minor) is go.mod's.
func goModVersion(t *testing.T, tag string) {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	tagVersion, _, _ := strings.Cut(tag, "-") // 1.26-bookworm
	if parts := strings.Split(tagVersion, "."); len(parts) < 2 || parts[0]+"."+parts[1] != string(m[1]) {
		t.Errorf("builder golang:%s, but go.mod says go %s", tag, m[1])
	}
}
