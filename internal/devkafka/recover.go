package devkafka

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// recoverTopics makes the broker's topic list whole again before it
// starts. kfake writes its list of topics (topics.json) only at start and
// at a clean stop, while a topic's records go to its partition files as
// they arrive: a broker killed (SIGKILL, a second Ctrl-C) forgets every
// topic created since it started, and with them their records, although
// the files are there. Each partition lives in partitions/<topic>-<n>
// (kfake deletes the directories of a deleted topic), so a directory of a
// topic the list lacks is a topic to add back, with as many partitions as
// its highest partition directory says.
//
// What stays at risk: records the broker had accepted but not yet handed
// to the operating system when it was killed (kfake writes each batch as it
// arrives, without fsync unless asked), a topic's configs set since the
// last clean start, and everything on a machine crash without fsync.
func recoverTopics(dir string, log *slog.Logger) error {
	path := filepath.Join(dir, "topics.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new data dir: kfake writes the list itself
	}
	if err != nil {
		return err
	}
	var doc struct {
		Version int               `json:"version"`
		Topics  []json.RawMessage `json:"topics"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	known := map[string]bool{}
	for _, raw := range doc.Topics {
		var t struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		known[t.Name] = true
	}
	entries, err := os.ReadDir(filepath.Join(dir, "partitions"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lost := map[string]int{} // topic → partitions
	for _, e := range entries {
		i := strings.LastIndex(e.Name(), "-")
		if !e.IsDir() || i <= 0 {
			continue
		}
		p, err := strconv.Atoi(e.Name()[i+1:])
		if err != nil || p < 0 {
			continue
		}
		topic, err := url.PathUnescape(e.Name()[:i])
		if err != nil || known[topic] {
			continue
		}
		lost[topic] = max(lost[topic], p+1)
	}
	if len(lost) == 0 {
		return nil
	}
	names := make([]string, 0, len(lost))
	for t := range lost {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		raw, err := json.Marshal(map[string]any{"name": t, "id": base64.StdEncoding.EncodeToString(id[:]), "partitions": lost[t], "replicas": 1})
		if err != nil {
			return err
		}
		doc.Topics = append(doc.Topics, raw)
		log.Info("recovered a topic the last run did not save (it was killed, or stopped by a second Ctrl-C)", "topic", t, "partitions", lost[t])
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	tmp := path + ".recover"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
