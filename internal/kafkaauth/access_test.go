package kafkaauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	aclTopic     = "orders"
	aclAdmin     = "admin"
	aclAdminPass = "admin-secret"
	aclPass      = "user-secret"
)

// aclAllow and aclDeny build the literal ACLs the tests grant.
func aclAllow(rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
	return kfake.ACL{Resource: rt, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
}

func aclDeny(rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
	a := aclAllow(rt, name, op)
	a.Allow = false
	return a
}

// aclCase is one user of the shared cluster. Kafka implies Describe from
// Read (kfake too: acl.go matchesOp), so a user missing only Describe is
// one with Read allowed and Describe explicitly denied.
type aclCase struct {
	name         string
	acls         []kfake.ACL
	op, resType  string
	resource     string // "" when nothing is missing
	consumerGets error  // what the group consumer's PollFetches reports; nil: it consumes
}

func aclGroupOf(user string) string { return "pipe-" + user }

func aclCases() []aclCase {
	all := func(user string, drop kmsg.ACLOperation, dropOn kmsg.ACLResourceType, extra ...kfake.ACL) []kfake.ACL {
		g := aclGroupOf(user)
		base := []struct {
			rt   kmsg.ACLResourceType
			name string
			op   kmsg.ACLOperation
		}{
			{kmsg.ACLResourceTypeCluster, ClusterResourceName, kmsg.ACLOperationDescribeConfigs},
			{kmsg.ACLResourceTypeGroup, g, kmsg.ACLOperationDescribe},
			{kmsg.ACLResourceTypeGroup, g, kmsg.ACLOperationRead},
			{kmsg.ACLResourceTypeTopic, aclTopic, kmsg.ACLOperationDescribe},
			{kmsg.ACLResourceTypeTopic, aclTopic, kmsg.ACLOperationRead},
		}
		var out []kfake.ACL
		for _, b := range base {
			if b.rt == dropOn && b.op == drop {
				continue
			}
			out = append(out, aclAllow(b.rt, b.name, b.op))
		}
		return append(out, extra...)
	}
	none := kmsg.ACLOperationUnknown
	return []aclCase{
		{name: "full", acls: all("full", none, kmsg.ACLResourceTypeUnknown)},
		{
			name: "nocluster", acls: all("nocluster", kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeCluster),
			op: OpDescribeConfigs, resType: ResourceCluster, resource: ClusterResourceName,
		},
		{
			name: "nodescgroup",
			acls: all("nodescgroup", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup,
				aclDeny(kmsg.ACLResourceTypeGroup, aclGroupOf("nodescgroup"), kmsg.ACLOperationDescribe)),
			op: OpDescribe, resType: ResourceGroup, resource: aclGroupOf("nodescgroup"),
			consumerGets: kerr.GroupAuthorizationFailed,
		},
		{
			name: "noreadgroup", acls: all("noreadgroup", kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup),
			op: OpRead, resType: ResourceGroup, resource: aclGroupOf("noreadgroup"),
			consumerGets: kerr.GroupAuthorizationFailed,
		},
		{
			name: "nodesctopic",
			acls: all("nodesctopic", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic,
				aclDeny(kmsg.ACLResourceTypeTopic, aclTopic, kmsg.ACLOperationDescribe)),
			op: OpDescribe, resType: ResourceTopic, resource: aclTopic,
			consumerGets: kerr.TopicAuthorizationFailed,
		},
		{
			name: "noreadtopic", acls: all("noreadtopic", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic),
			op: OpRead, resType: ResourceTopic, resource: aclTopic,
			consumerGets: kerr.TopicAuthorizationFailed,
		},
	}
}

// aclCluster starts one kfake cluster with SASL and ACLs on (and no
// allow-everyone ACL), an admin superuser, one SCRAM user per case, and the
// topic holding a few records.
func aclCluster(t *testing.T, cases []aclCase) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", aclAdmin, aclAdminPass),
		kfake.SeedTopics(2, aclTopic),
	}
	for _, c := range cases {
		opts = append(opts, kfake.User("SCRAM-SHA-256", c.name, aclPass, c.acls...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)

	admin := aclClient(t, c, aclAdmin, aclAdminPass)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 4 {
		r := &kgo.Record{Topic: aclTopic, Value: []byte{byte('a' + i)}}
		if err := admin.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("seeding records: %v", err)
		}
	}
	return c
}

func aclClient(t *testing.T, c *kfake.Cluster, user, pass string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// aclConsume runs a real group consumer as the user until it gets a record
// or an error, and returns what it got.
func aclConsume(t *testing.T, c *kfake.Cluster, user, group string) (records int, errs []error) {
	t.Helper()
	cl := aclClient(t, c, user, aclPass,
		kgo.ConsumeTopics(aclTopic),
		kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			errs = append(errs, fe.Err)
			t.Logf("%s: PollFetches error on topic %q partition %d: %v", user, fe.Topic, fe.Partition, fe.Err)
		}
		records += fs.NumRecords()
		if records > 0 || len(errs) > 0 {
			return records, errs
		}
	}
	return records, errs
}

func TestCheckAccessACLs(t *testing.T) {
	cases := aclCases()
	c := aclCluster(t, cases)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			group := aclGroupOf(tc.name)
			principal := "User:" + tc.name
			cl := aclClient(t, c, tc.name, aclPass)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			err := CheckAccess(ctx, cl, principal, []string{aclTopic}, group)
			if tc.resource == "" {
				if err != nil {
					t.Fatalf("CheckAccess with all five permissions: %v", err)
				}
			} else {
				ae, ok := errors.AsType[*AccessError](err)
				if !ok {
					t.Fatalf("CheckAccess = %v (%T), want *AccessError", err, err)
				}
				if ae.Operation != tc.op || ae.ResourceType != tc.resType || ae.Resource != tc.resource || ae.Principal != principal {
					t.Fatalf("CheckAccess reported %s on %s %q for %q, want %s on %s %q for %q",
						ae.Operation, ae.ResourceType, ae.Resource, ae.Principal, tc.op, tc.resType, tc.resource, principal)
				}
				p := Problem(err)
				if !strings.HasPrefix(p, "Cluster failed to authorize Sluice: the user "+principal+" is missing the Kafka ACL permission "+tc.op) {
					t.Fatalf("Problem(CheckAccess) = %q", p)
				}
				t.Logf("Problem: %s", p)
			}

			// Running it again gives the same answer, so a caller that
			// re-runs the check while the problem shows logs nothing new.
			if again := CheckAccess(ctx, cl, principal, []string{aclTopic}, group); Problem(again) != Problem(err) {
				t.Fatalf("second CheckAccess = %q, first %q", Problem(again), Problem(err))
			}

			records, errs := aclConsume(t, c, tc.name, group)
			if tc.consumerGets == nil {
				// DescribeConfigs on the cluster is the reference's
				// requirement, not the consumer's: without it the
				// consumer still consumes.
				if records == 0 || len(errs) > 0 {
					t.Fatalf("consumer got %d records and errors %v, want records", records, errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("consumer got %d records and no error, want %v", records, tc.consumerGets)
			}
			for _, e := range errs {
				if !errors.Is(e, tc.consumerGets) {
					t.Fatalf("consumer error %v, want %v", e, tc.consumerGets)
				}
				if p := Problem(e); !strings.HasPrefix(p, "Cluster failed to authorize Sluice: ") {
					t.Fatalf("Problem(%v) = %q", e, p)
				} else {
					t.Logf("Problem(consumer error): %s", p)
				}
			}
		})
	}
}

// TestCheckAccessTopicNotFound: a topic that does not exist is not an ACL
// problem; CheckAccess says so with ErrTopicNotFound after the ACL checks.
func TestCheckAccessTopicNotFound(t *testing.T) {
	cases := aclCases()[:1]
	c := aclCluster(t, cases)
	cl := aclClient(t, c, aclAdmin, aclAdminPass)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := CheckAccess(ctx, cl, "User:"+aclAdmin, []string{aclTopic, "missing"}, "g")
	if !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("CheckAccess = %v, want ErrTopicNotFound", err)
	}
	if _, ok := errors.AsType[*AccessError](err); ok {
		t.Fatalf("a missing topic reported as an ACL problem: %v", err)
	}
	if p := Problem(err); !strings.Contains(p, `"missing" does not exist`) {
		t.Fatalf("Problem = %q", p)
	}
	// The check created nothing.
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range resp.Topics {
		if tp.Topic != nil && *tp.Topic == "missing" {
			t.Fatal("CheckAccess created the missing topic")
		}
	}
}

func TestAccessErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *AccessError
		want string
	}{
		{
			&AccessError{Operation: OpDescribe, ResourceType: ResourceTopic, Resource: "orders"},
			`Cluster failed to authorize Sluice: the user is missing the Kafka ACL permission Describe on Topic "orders" (grant it with kafka-acls --add --allow-principal User:NAME --operation Describe --topic orders)`,
		},
		{
			&AccessError{Operation: OpRead, ResourceType: ResourceGroup, Resource: "my group", Principal: "alice"},
			`Cluster failed to authorize Sluice: the user User:alice is missing the Kafka ACL permission Read on Group "my group" (grant it with kafka-acls --add --allow-principal User:alice --operation Read --group 'my group')`,
		},
		{
			&AccessError{Operation: OpDescribeConfigs, ResourceType: ResourceCluster, Resource: ClusterResourceName, Principal: "User:CN=sluice,O=acme"},
			`Cluster failed to authorize Sluice: the user User:CN=sluice,O=acme is missing the Kafka ACL permission DescribeConfigs on the Cluster (grant it with kafka-acls --add --allow-principal 'User:CN=sluice,O=acme' --operation DescribeConfigs --cluster)`,
		},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		if got := Problem(tc.err); got != tc.want {
			t.Errorf("Problem: got %s", got)
		}
	}
	ae := &AccessError{Operation: OpRead, ResourceType: ResourceTopic, Resource: "t", Err: kerr.TopicAuthorizationFailed}
	if !errors.Is(ae, kerr.TopicAuthorizationFailed) {
		t.Error("AccessError does not unwrap to its cause")
	}
}
