package kafkaauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// tokenTimeout bounds making one IAM token. The client's context only ends
// when the client closes, so without a bound a credential endpoint that hangs
// (an unreachable instance metadata service, a stuck STS call) would stall a
// connection attempt forever instead of failing it and letting kgo retry.
const tokenTimeout = 30 * time.Second

// iamSigner makes MSK IAM tokens for one region from one credentials
// provider.
type iamSigner struct {
	region string
	creds  aws.CredentialsProvider
}

// iamSigner resolves the region and credentials provider for IAM. An explicit
// Region and AWSCredentials are used as they are; whatever is missing comes
// from the AWS default config chain, which is loaded under ctx.
func (c Config) iamSigner(ctx context.Context) (iamSigner, error) {
	s := iamSigner{region: c.Region, creds: c.AWSCredentials}
	if s.region == "" || s.creds == nil {
		var opts []func(*awsconfig.LoadOptions) error
		if c.Region != "" {
			opts = append(opts, awsconfig.WithRegion(c.Region))
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return iamSigner{}, fmt.Errorf("iam: loading the AWS config (environment, shared config and profile): %w", err)
		}
		if s.region == "" {
			s.region = awsCfg.Region
		}
		if s.creds == nil {
			// The default config wraps its chain in a credentials cache,
			// so making a token per connection does not call STS or the
			// metadata service every time, yet still picks up rotated
			// credentials when they expire.
			s.creds = awsCfg.Credentials
		}
	}
	if s.region == "" {
		return iamSigner{}, fieldErr("region", "IAM needs the cluster's AWS region: set --region, or AWS_REGION, or a region in the AWS profile")
	}
	if s.creds == nil {
		return iamSigner{}, fieldErr("aws-credentials", "IAM found no AWS credentials provider: set AWS credentials in the environment, a profile, or a role")
	}
	return s, nil
}

// token makes one MSK IAM token: a base64url SigV4-presigned URL for the
// kafka-cluster:Connect action, valid for 15 minutes from now.
func (s iamSigner) token(ctx context.Context) (string, error) {
	// Retrieve on some providers ignores ctx; checking first means a
	// closed client never signs another token.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("iam: making the MSK IAM token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	tok, _, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, s.region, s.creds)
	if err != nil {
		// The signer's errors name what failed (loading credentials,
		// signing), never the key itself.
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return "", fmt.Errorf("iam: making the MSK IAM token in %s: %w (%w)", s.region, err, ctxErr)
		}
		return "", fmt.Errorf("iam: making the MSK IAM token in %s: %w", s.region, err)
	}
	return tok, nil
}

// mechanism is SASL/OAUTHBEARER whose token is made afresh for every
// authentication, which kgo runs per connection and on re-authentication:
// tokens expire after 15 minutes and credentials rotate, so a token made
// once at start-up would stop working.
func (s iamSigner) mechanism() sasl.Mechanism {
	return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
		tok, err := s.token(ctx)
		if err != nil {
			return oauth.Auth{}, err
		}
		return oauth.Auth{Token: tok}, nil
	})
}
