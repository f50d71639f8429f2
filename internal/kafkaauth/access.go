package kafkaauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka ACL operations and resource types, spelled as kafka-acls and the
// reference platform's documentation spell them.
const (
	OpDescribe        = "Describe"
	OpRead            = "Read"
	OpDescribeConfigs = "DescribeConfigs"

	ResourceTopic   = "Topic"
	ResourceGroup   = "Group"
	ResourceCluster = "Cluster"

	// ClusterResourceName is the name Kafka gives the one Cluster resource.
	ClusterResourceName = "kafka-cluster"
)

// AccessError is a Kafka ACL permission that the pipe's user lacks. Its
// message is the reference platform's "Cluster failed to authorize ..."
// problem, naming the permission and how to grant it.
type AccessError struct {
	Operation    string // OpDescribe, OpRead or OpDescribeConfigs
	ResourceType string // ResourceTopic, ResourceGroup or ResourceCluster
	Resource     string // the topic or group name; ClusterResourceName for the cluster
	// Principal is the Kafka principal the brokers see, such as
	// "User:alice"; empty when unknown. A bare name is taken as a user.
	Principal string
	Err       error // the broker's error, e.g. kerr.TopicAuthorizationFailed
}

func (e *AccessError) Error() string {
	who, principal := "the user", "User:NAME"
	if p := normalPrincipal(e.Principal); p != "" {
		who, principal = "the user "+p, p
	}
	var target, flag string
	switch e.ResourceType {
	case ResourceCluster:
		target, flag = "the Cluster", "--cluster"
	case ResourceGroup:
		target, flag = fmt.Sprintf("Group %q", e.Resource), "--group "+shellQuote(e.Resource)
	default:
		target, flag = fmt.Sprintf("%s %q", e.ResourceType, e.Resource), "--topic "+shellQuote(e.Resource)
	}
	return fmt.Sprintf("%s: %s is missing the Kafka ACL permission %s on %s (grant it with kafka-acls --add --allow-principal %s --operation %s %s)",
		phraseAuthorize, who, e.Operation, target, shellQuote(principal), e.Operation, flag)
}

func (e *AccessError) Unwrap() error { return e.Err }

// ErrTopicNotFound is wrapped by CheckAccess's error for a topic that does
// not exist. It is not an ACL problem: Kafka answers TOPIC_AUTHORIZATION_FAILED
// rather than "unknown topic" to a user without Describe on the topic, so a
// user who is told a topic does not exist is allowed to know that.
var ErrTopicNotFound = errors.New("topic does not exist")

type topicNotFoundError struct{ topic string }

func (e *topicNotFoundError) Error() string {
	return fmt.Sprintf("Topic %q does not exist on the cluster: check the pipe's topic name, or create the topic", e.topic)
}

func (e *topicNotFoundError) Unwrap() error { return ErrTopicNotFound }

// CheckAccess is the preflight run before a pipe consumes, and again while a
// pipe shows an authorization problem. It tests, with read-only requests
// that neither consume records nor change any group, each ACL permission
// the reference platform requires of a consumer, in the reference's order:
//
//  1. DescribeConfigs on the Cluster: DescribeConfigs of one broker config.
//  2. Describe on the Group: DescribeGroups (kgo first asks FindCoordinator,
//     which needs the same permission).
//  3. Read on the Group: an OffsetCommit of partition -1 (see checkReadGroup).
//  4. Describe on each Topic: Metadata for the topics.
//  5. Read on each Topic: a Fetch of partition -1 (see checkReadTopics).
//
// It returns the first missing permission as *AccessError, nil when all are
// present, an error wrapping ErrTopicNotFound when a topic does not exist
// (returned last, after every ACL check passed, so that a caller can tell the
// user without mistaking it for an ACL problem: the group consumer would
// otherwise wait for the topic without saying anything), and any other error
// (connection, SASL, TLS) wrapped as it came, for Problem to phrase.
func CheckAccess(ctx context.Context, cl *kgo.Client, principal string, topics []string, group string) error {
	topics = uniqueTopics(topics)

	// Metadata comes first although Describe Topic is reported fourth: the
	// later checks need the topic IDs and a broker ID it returns.
	meta, err := describeTopics(ctx, cl, topics)
	if err != nil {
		return err
	}

	if err := checkClusterDescribeConfigs(ctx, cl, principal, meta.brokerID); err != nil {
		return err
	}
	if group != "" {
		if err := checkDescribeGroup(ctx, cl, principal, group); err != nil {
			return err
		}
		if err := checkReadGroup(ctx, cl, principal, group, topics, meta); err != nil {
			return err
		}
	}
	for _, t := range topics {
		if meta.denied[t] {
			return &AccessError{Operation: OpDescribe, ResourceType: ResourceTopic, Resource: t, Principal: principal, Err: kerr.TopicAuthorizationFailed}
		}
	}
	if err := checkReadTopics(ctx, cl, principal, topics, meta); err != nil {
		return err
	}
	for _, t := range topics {
		if meta.missing[t] {
			return &topicNotFoundError{topic: t}
		}
	}
	return nil
}

type topicsMeta struct {
	brokerID int32               // any live broker, for DescribeConfigs
	ids      map[string][16]byte // topic ID of each described topic
	denied   map[string]bool     // TOPIC_AUTHORIZATION_FAILED: no Describe
	missing  map[string]bool     // the topic does not exist
	found    map[string]bool     // described: Read can be checked
}

// describeTopics checks Describe on the topics: Metadata answers
// TOPIC_AUTHORIZATION_FAILED for a topic the user may not describe, both in
// kfake (03_metadata.go) and in Kafka, which also says so for a topic that
// does not exist, so that existence does not leak.
func describeTopics(ctx context.Context, cl *kgo.Client, topics []string) (*topicsMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	// A non-nil, empty list asks for no topics (nil would ask for all),
	// which still returns the brokers.
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = false // a check must not create topics
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("requesting metadata for topics %v: %w", topics, err)
	}
	m := &topicsMeta{
		brokerID: -1,
		ids:      make(map[string][16]byte),
		denied:   make(map[string]bool),
		missing:  make(map[string]bool),
		found:    make(map[string]bool),
	}
	if len(resp.Brokers) > 0 {
		m.brokerID = resp.Brokers[0].NodeID
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		name := *rt.Topic
		switch err := kerr.ErrorForCode(rt.ErrorCode); {
		case err == nil:
			m.found[name] = true
			m.ids[name] = rt.TopicID
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			m.denied[name] = true
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			m.missing[name] = true
		default:
			return nil, fmt.Errorf("describing topic %q: %w", name, err)
		}
	}
	return m, nil
}

// checkClusterDescribeConfigs checks DescribeConfigs on the Cluster, which
// Kafka (and kfake, 32_describe_configs.go) require to describe a BROKER
// resource; a denied resource carries CLUSTER_AUTHORIZATION_FAILED. The
// group consumer itself never needs this permission; the reference platform
// does, so Sluice asks for the same set.
func checkClusterDescribeConfigs(ctx context.Context, cl *kgo.Client, principal string, brokerID int32) error {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	// A broker's ID routes the request to that broker; "" (the
	// cluster-wide defaults) is the fallback when no broker is known.
	if brokerID >= 0 {
		rr.ResourceName = strconv.Itoa(int(brokerID))
	}
	// One config keeps the answer small; which one does not matter.
	rr.ConfigNames = []string{"message.max.bytes"}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && len(resp.Resources) == 0 {
		err = errors.New("empty DescribeConfigs response")
	}
	if err == nil {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return &AccessError{Operation: OpDescribeConfigs, ResourceType: ResourceCluster, Resource: ClusterResourceName, Principal: principal, Err: err}
	default:
		return fmt.Errorf("checking DescribeConfigs on the cluster: %w", err)
	}
}

// checkDescribeGroup checks Describe on the group with DescribeGroups. kgo
// sends FindCoordinator first, which needs Describe on the group as well
// (10_find_coordinator.go, 15_describe_groups.go, and Kafka's KafkaApis), so
// the denial can come back either as the request's error or in the
// response. A group that does not exist yet is fine: it is created when the
// consumer joins.
func checkDescribeGroup(ctx context.Context, cl *kgo.Client, principal, group string) error {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		for _, g := range resp.Groups {
			if g.Group == group {
				err = kerr.ErrorForCode(g.ErrorCode)
			}
		}
	}
	switch {
	case err == nil, errors.Is(err, kerr.GroupIDNotFound):
		return nil
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return &AccessError{Operation: OpDescribe, ResourceType: ResourceGroup, Resource: group, Principal: principal, Err: err}
	default:
		return fmt.Errorf("checking Describe on group %q: %w", group, err)
	}
}

// checkReadGroup checks Read on the group. The requests that need it are
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and
// TxnOffsetCommit (OffsetFetch needs only Describe). Joining would rebalance
// the pipe's running consumers, and Heartbeat to a group that does not exist
// is answered before any ACL check by kfake. OffsetCommit is harmless when it
// names a partition that cannot exist: Kafka's KafkaApis checks Read on the
// group first (GROUP_AUTHORIZATION_FAILED for every partition), then Read on
// the topic, then drops partitions missing from its metadata cache with
// UNKNOWN_TOPIC_OR_PARTITION, and answers without reaching the group
// coordinator when nothing is left, so nothing is committed and no group is
// created. kfake (groups.go handleOffsetCommit) also checks Read on the
// group first and never commits a partition that does not exist; when the
// group has members it answers UNKNOWN_MEMBER_ID after the ACL check, and a
// group it had to create for the request stays behind, empty. Generation -1
// with no member ID is the admin ("simple") commit form, so the pipe's own
// members are left alone.
//
// The answer only carries per-partition errors, so the request must name a
// partition: partition -1 of the first topic.
func checkReadGroup(ctx context.Context, cl *kgo.Client, principal, group string, topics []string, meta *topicsMeta) error {
	topic := "sluice-access-check" // any name: the group is checked before it
	if len(topics) > 0 {
		topic = topics[0]
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rt.TopicID = meta.ids[topic] // v10+ addresses topics by ID
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition = -1
	rp.Offset = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); errors.Is(e, kerr.GroupAuthorizationFailed) {
					err = e
				}
			}
		}
	}
	switch {
	case err == nil:
		// Any other per-partition answer (UNKNOWN_TOPIC_OR_PARTITION,
		// TOPIC_AUTHORIZATION_FAILED, UNKNOWN_MEMBER_ID) means the
		// group check passed.
		return nil
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return &AccessError{Operation: OpRead, ResourceType: ResourceGroup, Resource: group, Principal: principal, Err: err}
	default:
		return fmt.Errorf("checking Read on group %q: %w", group, err)
	}
}

// checkReadTopics checks Read on the described topics with one Fetch of
// partition -1 of each. Kafka's KafkaApis answers TOPIC_AUTHORIZATION_FAILED
// for a topic the user may not read before it looks the partition up, and
// UNKNOWN_TOPIC_OR_PARTITION otherwise, without reading any log; kfake
// (01_fetch.go) checks Read before the partition too. So no records are
// transferred, no fetch session is created (session epoch -1), and any broker
// can answer. ListOffsets and OffsetFetch would not do: they need only
// Describe on the topic.
func checkReadTopics(ctx context.Context, cl *kgo.Client, principal string, topics []string, meta *topicsMeta) error {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 1
	req.SessionID = 0
	req.SessionEpoch = -1
	var asked []string
	for _, t := range topics {
		if !meta.found[t] {
			continue
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = t
		rt.TopicID = meta.ids[t] // v13+ addresses topics by ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = -1
		rp.FetchOffset = 0
		rp.PartitionMaxBytes = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		asked = append(asked, t)
	}
	if len(asked) == 0 {
		return nil
	}
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("checking Read on topics %v: %w", asked, err)
	}
	byID := make(map[[16]byte]string, len(asked))
	for _, t := range asked {
		byID[meta.ids[t]] = t
	}
	denied := make(map[string]error)
	for _, rt := range resp.Topics {
		name := rt.Topic
		if name == "" {
			name = byID[rt.TopicID]
		}
		for _, p := range rt.Partitions {
			if e := kerr.ErrorForCode(p.ErrorCode); errors.Is(e, kerr.TopicAuthorizationFailed) {
				denied[name] = e
			}
		}
	}
	for _, t := range asked { // report in the caller's order
		if e, ok := denied[t]; ok {
			return &AccessError{Operation: OpRead, ResourceType: ResourceTopic, Resource: t, Principal: principal, Err: e}
		}
	}
	return nil
}

func uniqueTopics(topics []string) []string {
	seen := make(map[string]bool, len(topics))
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// normalPrincipal returns the principal as kafka-acls expects it: a bare
// name is a user.
func normalPrincipal(p string) string {
	p = strings.TrimSpace(p)
	if p == "" || strings.Contains(p, ":") {
		return p
	}
	return "User:" + p
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters Kafka allows in topic names, so the suggested command can be
// pasted as it is (group IDs and mTLS principals may hold spaces, commas or
// equals signs).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
