package pipe

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// validateTarget checks that exactly one kind's section is set, and that
// section.
func validateTarget(v *ValidationError, s Spec) {
	t := s.Target
	if kinds := t.kinds(); len(kinds) > 1 {
		v.Add("target", strings.Join(kinds, ", "), "give exactly one target section: a pipe delivers to one target")
		return
	}
	switch t.Kind() {
	case "":
		v.Add("target", "", "required: give the http:// or https:// URL that receives batches (target.http.url), a function registered with `sluice functions set` (target.http.function), "+
			"a Kafka topic (target.kafka.topic), a command (target.exec.command), an AWS Lambda function (target.lambda.functionName) or a function Sluice hosts (target.function.name)")
	case KindHTTP:
		validateHTTP(v, t.HTTP)
	case KindKafka:
		validateKafka(v, s)
	case KindExec:
		validateExec(v, t.Exec)
	case KindLambda:
		validateLambda(v, s)
	case KindFunction:
		validateFunction(v, t.Function)
	}
}

// validateHTTP checks an http target section.
func validateHTTP(v *ValidationError, t *HTTPTarget) {
	switch u, err := url.Parse(t.URL); {
	case t.Function != "" && t.URL != "":
		v.Add("target.http.function", t.Function, "give either target.http.url or target.http.function, not both")
	case t.Function != "":
		if !nameRE.MatchString(t.Function) || len(t.Function) > MaxNameLength {
			v.Add("target.http.function", strconv.Quote(t.Function), fmt.Sprintf("use the name of a registered function: 1–%d letters, digits, '-' and '_'", MaxNameLength))
		}
	case t.URL == "":
		v.Add("target.http.url", "", "required: give the http:// or https:// URL that receives batches, or target.http.function, a function registered with `sluice functions set`")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(t.URL) > maxURLLength:
		v.Add("target.http.url", strconv.Quote(t.URL), "use an absolute http:// or https:// URL")
	case u.User != nil:
		// Not quoted back: the value is the credential.
		v.Add("target.http.url", "(with user:password@)", "credentials in the URL would be stored, shown and logged in clear: "+
			"remove them from the URL and send them from a secret, e.g. --header Authorization=secret:SECRET/KEY")
	}
	validateHTTPAuth(v, t)
	if len(t.PathParameterValues) > 0 || len(t.QueryParameters) > 0 {
		switch {
		case t.Function != "":
			v.Add("target.http.pathParameterValues", "", "path and query parameters need target.http.url: a function's URL can change without the pipe")
		case t.URL != "":
			if _, ok := t.ResolvedURL(t.URL); !ok {
				v.Add("target.http.pathParameterValues", strconv.Itoa(len(t.PathParameterValues))+" values",
					"give one value per * segment of the URL's path, in order")
			}
		}
		for k := range t.QueryParameters {
			if k == "" {
				v.Add("target.http.queryParameters", "", "a query parameter needs a name")
			}
		}
	}
	if s := t.TimeoutSeconds; s < 0 || s > maxTargetTimeoutSecondsFloat {
		v.Add("target.http.timeoutSeconds", strconv.FormatFloat(s, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
}

// Limits of a target's headers.
const (
	MaxTargetHeaders     = 20
	maxHeaderValueLength = 8 << 10
)

var (
	// headerNameRE is an HTTP field name (RFC 9110's token).
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// secretRefRE is SECRET/KEY, secretNameRE SECRET, as package secret
	// names them (it is not imported: the domain stays free of I/O).
	secretRefRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?/[-._a-zA-Z0-9]{1,253}$`)
	secretNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)
)

// reservedHeaders are set by Sluice itself: a pipe may not replace them.
var reservedHeaders = []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent", "X-Sluice-Pipe", "X-Sluice-Signature"}

func validateHTTPAuth(v *ValidationError, t *HTTPTarget) {
	if len(t.Headers) > MaxTargetHeaders {
		v.Add("target.http.headers", strconv.Itoa(len(t.Headers)), fmt.Sprintf("give at most %d headers", MaxTargetHeaders))
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		field := "target.http.headers." + name
		value := t.Headers[name]
		switch {
		case !headerNameRE.MatchString(name):
			v.Add(field, strconv.Quote(name), "use an HTTP header name: letters, digits and !#$%&'*+.^_`|~-")
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, name) }):
			v.Add(field, "", "Sluice sets this header itself: use another name")
		}
		ref, isSecret := strings.CutPrefix(value, SecretValuePrefix)
		switch {
		case isSecret && !secretRefRE.MatchString(ref):
			v.Add(field, strconv.Quote(value), "a secret value is secret:SECRET/KEY, naming a stored secret and one of its keys")
		case isSecret && t.Function != "":
			v.Add(field, "", "headers from secrets need target.http.url: a function's URL can change without the pipe, and the secret would follow it")
		case !isSecret && (len(value) > maxHeaderValueLength || strings.ContainsAny(value, "\r\n\x00")):
			// Not quoted back: a value may be a credential given in clear.
			v.Add(field, "", fmt.Sprintf("use a value of at most %d bytes without line breaks", maxHeaderValueLength))
		}
	}
	if o := t.OAuth; o != nil {
		switch u, err := url.Parse(o.TokenURL); {
		case o.TokenURL == "":
			v.Add("target.http.oauth.tokenUrl", "", "required: the authorization server's token endpoint")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			v.Add("target.http.oauth.tokenUrl", "", "use an absolute https:// URL without user:password@")
		}
		if !secretNameRE.MatchString(o.ClientSecret) {
			v.Add("target.http.oauth.clientSecret", strconv.Quote(o.ClientSecret), "name a stored secret holding the keys clientId and clientSecret")
		}
		if t.Function != "" {
			v.Add("target.http.oauth", "", "OAuth needs target.http.url: a function's URL can change without the pipe")
		}
		for name := range t.Headers {
			if strings.EqualFold(name, "Authorization") {
				v.Add("target.http.headers."+name, "", "OAuth sets Authorization: give one or the other")
			}
		}
		if len(o.Scopes) > 20 {
			v.Add("target.http.oauth.scopes", strconv.Itoa(len(o.Scopes)), "give at most 20 scopes")
		}
	}
	if s := t.SigningSecret; s != "" {
		switch {
		case !secretRefRE.MatchString(s):
			v.Add("target.http.signingSecret", strconv.Quote(s), "give SECRET/KEY, naming a stored secret and the key holding the signing key")
		case t.Function != "":
			v.Add("target.http.signingSecret", "", "a signing secret needs target.http.url: a function's URL can change without the pipe")
		}
	}
}
