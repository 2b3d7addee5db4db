package hfhub

import (
	"net/url"
	"regexp"
	"strings"
)

// redactedMark replaces every credential RedactURL removes.
const redactedMark = "REDACTED"

// RedactURL returns the URL u with every credential it may carry replaced
// by "REDACTED", for putting the URL into an error, a log line, a page or
// any other output:
//
//   - userinfo: "https://user:TOKEN@host/p" becomes "https://REDACTED@host/p"
//     (the user name goes too: a bare "TOKEN@" is common);
//   - token-like query and fragment values: keys such as token,
//     access_token, hf_token, api_key, key, password, secret, auth,
//     authorization, code, sig and signature (in any letter case; token,
//     signature, password, secret and credential also as part of a longer
//     key like "X-Hub-Token"), and pre-signed URL parameters of S3 (X-Amz-*),
//     Google Cloud Storage (X-Goog-*), Azure SAS (sig, se, sp, sv, ...) and
//     CloudFront (Signature, Policy, Key-Pair-Id, Expires): "?token=abc&x=1"
//     becomes "?token=REDACTED&x=1".
//
// Everything else (scheme, host, path, other parameters, their order) is
// kept, so the URL still says where a request went. A string that does not
// parse as a URL is scrubbed by pattern (anything between "//" and "@", and
// the values of token-like "key=value" pairs). RedactURL never fails and is
// safe for concurrent use.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" {
		return scrubText(u)
	}
	if p.User != nil {
		p.User = url.User(redactedMark)
	}
	p.RawQuery = redactParams(p.RawQuery)
	if p.Fragment != "" && strings.Contains(p.EscapedFragment(), "=") {
		frag := redactParams(p.EscapedFragment())
		p.Fragment, p.RawFragment = frag, frag
		if f, err := url.PathUnescape(frag); err == nil {
			p.Fragment = f
		}
	}
	return p.String()
}

// redactParams replaces the values of credential keys in an encoded
// "k=v&k=v" string, keeping everything else byte for byte.
func redactParams(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		k, _, hasValue := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		if hasValue && credentialKey(key) {
			parts[i] = k + "=" + redactedMark
		}
	}
	return strings.Join(parts, "&")
}

// credentialWords are the parts of a parameter name that mark a credential.
var credentialWords = []string{"token", "signature", "password", "passwd", "secret", "credential", "apikey", "api_key", "api-key", "authoriz"}

// credentialKeys are whole parameter names that carry credentials:
// Azure SAS, CloudFront and common short names.
var credentialKeys = map[string]bool{
	"sig": true, "key": true, "code": true, "pass": true, "pwd": true, "auth": true,
	"se": true, "sp": true, "sv": true, "sr": true, "st": true, "skoid": true, "sktid": true, "ske": true, "sks": true, "skv": true,
	"policy": true, "key-pair-id": true, "expires": true,
}

func credentialKey(key string) bool {
	k := strings.ToLower(strings.TrimSpace(key))
	if credentialKeys[k] || strings.HasPrefix(k, "x-amz-") || strings.HasPrefix(k, "x-goog-") {
		return true
	}
	for _, w := range credentialWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

var (
	userinfoRE = regexp.MustCompile(`//[^/?#@\s"']*@`)
	paramRE    = regexp.MustCompile(`([?&#;]|^)([^=&?#;\s"']+)=([^&#;\s"']*)`)
)

// scrubText removes credentials from text that is not a URL by pattern.
func scrubText(s string) string {
	s = userinfoRE.ReplaceAllString(s, "//"+redactedMark+"@")
	return paramRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := paramRE.FindStringSubmatch(m)
		if credentialKey(sub[2]) {
			return sub[1] + sub[2] + "=" + redactedMark
		}
		return m
	})
}
