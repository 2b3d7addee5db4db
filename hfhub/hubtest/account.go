package hubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

func handleWhoami(c *call) *apiError {
	if c.who.anon {
		return errorf(http.StatusUnauthorized, "You must be authenticated to call whoami: send an Authorization: Bearer <token> header.")
	}
	info := c.who.info
	orgs := []map[string]any{}
	for _, o := range info.Orgs {
		orgs = append(orgs, map[string]any{
			"type": "org", "id": pseudoID("org:" + o), "name": o, "fullname": o, "email": nil,
			"canPay": false, "avatarUrl": c.base + "/avatars/" + o + ".svg", "periodEnd": nil,
		})
	}
	writeJSON(c.w, http.StatusOK, map[string]any{
		"type": "user", "id": pseudoID("user:" + info.User), "name": info.User, "fullname": info.User,
		"email": info.User + "@example.com", "emailVerified": true, "canPay": false, "isPro": false,
		"periodEnd": nil, "avatarUrl": c.base + "/avatars/" + info.User + ".svg", "billingMode": "prepaid",
		"orgs": orgs,
		"auth": map[string]any{"type": "access_token",
			"accessToken": map[string]any{"displayName": "hubtest-token", "role": info.Role}},
	})
	return nil
}

// pseudoID makes a stable 24-hex Mongo-style id.
func pseudoID(s string) string { return GitBlobOID([]byte(s))[:24] }

// decodeJSON decodes a JSON body, reporting what is wrong for a person.
func decodeJSON(c *call, v any) *apiError {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return errorf(http.StatusBadRequest, "empty request body: a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	return nil
}

func handleCreateRepo(c *call) *apiError {
	if c.who.anon {
		return errorf(http.StatusUnauthorized, "You must be authenticated to create a repo: send an Authorization: Bearer <token> header.")
	}
	var req struct {
		Name         *string `json:"name"`
		Organization *string `json:"organization"`
		Type         *string `json:"type"`
		Private      *bool   `json:"private"`
		Visibility   *string `json:"visibility"`
		SDK          *string `json:"sdk"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if req.Name == nil || *req.Name == "" {
		return errorf(http.StatusBadRequest, `"name" is required: the repo name without namespace`)
	}
	name := *req.Name
	ns := c.who.info.User
	if req.Organization != nil && *req.Organization != "" {
		ns = *req.Organization
	} else if before, after, ok := strings.Cut(name, "/"); ok {
		ns, name = before, after // huggingface.js style "ns/name" also accepted
	}
	if req.Organization != nil && *req.Organization != "" && strings.Contains(name, "/") {
		return errorf(http.StatusBadRequest, `"name" %q must not contain "/" when "organization" is given`, name)
	}
	for _, part := range []string{ns, name} {
		if err := validRepoName(part); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	typ := "model"
	if req.Type != nil {
		t, err := normType(*req.Type)
		if err != nil || strings.HasSuffix(*req.Type, "s") {
			return errorf(http.StatusBadRequest, `"type" %q is invalid: use "model", "dataset" or "space"`, *req.Type)
		}
		typ = t
	}
	private := false
	if req.Private != nil {
		private = *req.Private
	}
	if req.Visibility != nil {
		switch *req.Visibility {
		case "public", "private":
			v := *req.Visibility == "private"
			if req.Private != nil && *req.Private != v {
				return errorf(http.StatusBadRequest, `"private": %v contradicts "visibility": %q`, *req.Private, *req.Visibility)
			}
			private = v
		case "protected":
			if typ != "space" {
				return errorf(http.StatusBadRequest, `"visibility": "protected" is only valid for spaces`)
			}
			private = true
		default:
			return errorf(http.StatusBadRequest, `"visibility" %q is invalid: use "public", "private" or "protected"`, *req.Visibility)
		}
	}
	sdk := ""
	if typ == "space" {
		if req.SDK == nil || !slices.Contains([]string{"gradio", "streamlit", "docker", "static"}, *req.SDK) {
			return errorf(http.StatusBadRequest, `"sdk" is required for spaces: one of gradio, streamlit, docker, static`)
		}
		sdk = *req.SDK
	}
	key := repoKey{typ, ns + "/" + name}
	url := c.base + "/" + key.urlPath()

	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing := s.repos[key]; existing != nil && (!existing.private || c.who.memberOf(ns)) {
		return &apiError{status: http.StatusConflict, msg: "You already created this " + typ + " repo",
			extra: map[string]any{"url": url}}
	}
	if !c.who.canWriteNamespace(ns) {
		return errorf(http.StatusForbidden, "You don't have the rights to create a %s under the namespace %q (token role %q, user %q).",
			typ, ns, c.who.info.Role, c.who.info.User)
	}
	if s.repos[key] != nil {
		return &apiError{status: http.StatusConflict, msg: "You already created this " + typ + " repo",
			extra: map[string]any{"url": url}}
	}
	rp := s.createRepoLocked(key, private, sdk, c.who.info.User)
	writeJSON(c.w, http.StatusOK, map[string]any{"url": url, "name": key.id, "id": rp.objectID})
	return nil
}

func handleDeleteRepo(c *call) *apiError {
	if c.who.anon {
		return errorf(http.StatusUnauthorized, "You must be authenticated to delete a repo.")
	}
	var req struct {
		Name         *string `json:"name"`
		Organization *string `json:"organization"`
		Type         *string `json:"type"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if req.Name == nil || *req.Name == "" {
		return errorf(http.StatusBadRequest, `"name" is required`)
	}
	ns, name := c.who.info.User, *req.Name
	if req.Organization != nil && *req.Organization != "" {
		ns = *req.Organization
	}
	typ := "model"
	if req.Type != nil {
		t, err := normType(*req.Type)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		typ = t
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	key := repoKey{typ, ns + "/" + name}
	rp := s.repos[key]
	if rp == nil || (rp.private && !c.who.memberOf(ns)) {
		return notFound("RepoNotFound", "Repository not found: %s %s", typ, key.id)
	}
	if !c.who.canWriteNamespace(ns) {
		return errorf(http.StatusForbidden, "You don't have the rights to delete %s %s.", typ, key.id)
	}
	delete(s.repos, key)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func handleRepoInfo(c *call) *apiError {
	q := c.r.URL.Query()
	expand := q["expand"]
	blobs := q.Get("blobs") == "true" || q.Get("blobs") == "1"
	if blobs && len(expand) > 0 {
		return errorf(http.StatusBadRequest, "`blobs` and `expand` cannot be combined: expand the `siblings` property instead")
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, cm, e := s.lookupRev(c)
	if e != nil {
		return e
	}
	siblings := []map[string]any{}
	for _, p := range sortedPaths(cm.files) {
		b := cm.files[p]
		sib := map[string]any{"rfilename": p}
		if blobs || slices.Contains(expand, "siblings") {
			sib["size"] = b.size()
			sib["blobId"] = b.oid
			if b.lfs != nil {
				sib["lfs"] = map[string]any{"sha256": b.lfs.sha256, "size": b.lfs.size, "pointerSize": len(b.data)}
			}
		}
		siblings = append(siblings, sib)
	}
	var used int64
	for _, data := range rp.lfs {
		used += int64(len(data))
	}
	ns, name, _ := strings.Cut(rp.key.id, "/")
	full := map[string]any{
		"_id": rp.objectID, "id": rp.key.id, "author": ns, "sha": cm.oid,
		"createdAt": rp.createdAt.Format(time.RFC3339Nano), "lastModified": rp.lastModified().Format(time.RFC3339Nano),
		"private": rp.private, "gated": false, "disabled": false, "downloads": 0, "likes": 0,
		"tags": []string{}, "siblings": siblings, "usedStorage": used, "xetEnabled": false,
	}
	if readme, ok := cm.files["README.md"]; ok && readme.lfs == nil {
		if card := parseCardData(string(readme.data)); card != nil {
			full["cardData"] = card
		}
	}
	switch rp.key.typ {
	case "model":
		full["modelId"] = rp.key.id
	case "space":
		full["sdk"] = rp.sdk
		full["subdomain"] = strings.ToLower(ns + "-" + name)
	}
	if len(expand) > 0 {
		out := map[string]any{"_id": rp.objectID, "id": rp.key.id}
		for _, prop := range expand {
			v, ok := full[prop]
			if !ok {
				return errorf(http.StatusBadRequest, "expand property %q is not supported (hubtest knows: author, sha, createdAt, lastModified, private, gated, disabled, downloads, likes, tags, siblings, usedStorage, xetEnabled, cardData)", prop)
			}
			out[prop] = v
		}
		writeJSON(c.w, http.StatusOK, out)
		return nil
	}
	writeJSON(c.w, http.StatusOK, full)
	return nil
}

// parseCardData extracts flat "key: value" pairs of README front matter,
// enough for cardData; nested YAML is reported as raw text.
func parseCardData(readme string) map[string]any {
	front, ok, _ := frontMatter(readme)
	if !ok {
		return nil
	}
	out := map[string]any{}
	for _, line := range strings.Split(front, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '-' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}

// frontMatter returns the YAML between a leading "---" line and the next
// "---" line. ok is false when there is none; err when it is not closed.
func frontMatter(content string) (front string, ok bool, err error) {
	content = strings.ReplaceAll(content, "\r\n", "\n")
	if !strings.HasPrefix(content, "---\n") {
		return "", false, nil
	}
	rest := content[4:]
	if strings.HasPrefix(rest, "---\n") || rest == "---" {
		return "", true, nil
	}
	end := strings.Index(rest, "\n---\n")
	if end < 0 {
		if strings.HasSuffix(rest, "\n---") {
			end = len(rest) - 4
		} else {
			return "", true, fmt.Errorf("the YAML metadata block opened by '---' on line 1 is never closed by a '---' line")
		}
	}
	return rest[:end], true, nil
}

func handleValidateYAML(c *call) *apiError {
	if c.who.anon {
		return errorf(http.StatusUnauthorized, "You must be authenticated to validate YAML.")
	}
	var req struct {
		Content  *string `json:"content"`
		RepoType *string `json:"repoType"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if req.Content == nil {
		return errorf(http.StatusBadRequest, `"content" is required: the full README.md text`)
	}
	if req.RepoType != nil {
		if _, err := normType(*req.RepoType); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	problems := validateYAML(*req.Content)
	errs := []map[string]string{}
	for _, p := range problems {
		errs = append(errs, map[string]string{"message": p})
	}
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusBadRequest
		c.w.Header().Set("X-Error-Message", "Invalid metadata in README.md: "+problems[0])
	}
	writeJSON(c.w, status, map[string]any{"errors": errs, "warnings": []any{}})
	return nil
}

// validateYAML checks README front matter with a deliberately small YAML
// subset check (the fake is stdlib-only): the block must be closed, must not
// use tabs for indentation, every line must be a mapping entry, a list item,
// a comment or part of a block scalar/flow collection, and quotes, brackets
// and braces must balance.
func validateYAML(readme string) []string {
	front, ok, err := frontMatter(readme)
	if err != nil {
		return []string{err.Error()}
	}
	if !ok {
		return nil
	}
	var problems []string
	inBlockScalar, blockIndent := false, 0
	depth := 0 // open [ and { across lines
	for i, line := range strings.Split(front, "\n") {
		n := i + 2 // line 1 is the opening ---
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if strings.HasPrefix(trimmed, "\t") || strings.HasPrefix(line, "\t") {
			problems = append(problems, fmt.Sprintf("line %d: tabs are not allowed for indentation in YAML", n))
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if inBlockScalar {
			if indent > blockIndent {
				continue
			}
			inBlockScalar = false
		}
		if depth > 0 {
			depth += bracketBalance(trimmed)
			continue
		}
		body := strings.TrimPrefix(strings.TrimPrefix(trimmed, "- "), "-")
		if body == "" && strings.HasPrefix(trimmed, "-") {
			continue
		}
		if q := unbalancedQuote(body); q != 0 {
			problems = append(problems, fmt.Sprintf("line %d: unclosed %c quote", n, q))
			continue
		}
		key, val, isMap := cutMapping(body)
		switch {
		case isMap:
			_ = key
			v := strings.TrimSpace(val)
			if v == "|" || v == ">" || strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
				inBlockScalar, blockIndent = true, indent
			}
			depth += bracketBalance(v)
		case strings.HasPrefix(trimmed, "-"):
			depth += bracketBalance(body) // a scalar list item
		case strings.HasPrefix(body, "[") || strings.HasPrefix(body, "{"):
			depth += bracketBalance(body)
		default:
			problems = append(problems, fmt.Sprintf("line %d: %q is neither a 'key: value' pair nor a '- item'", n, trimmed))
		}
		if depth < 0 {
			problems = append(problems, fmt.Sprintf("line %d: unbalanced closing bracket", n))
			depth = 0
		}
	}
	if depth > 0 {
		problems = append(problems, "an opening '[' or '{' is never closed")
	}
	return problems
}

// cutMapping splits "key: value" (or "key:") outside quotes.
func cutMapping(s string) (string, string, bool) {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			if i == 0 {
				quote = r
			}
		case r == ':' && (i+1 == len(s) || s[i+1] == ' '):
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}

func unbalancedQuote(s string) rune {
	s = strings.TrimSpace(s)
	for _, part := range []string{s, afterColon(s)} {
		part = strings.TrimSpace(part)
		if len(part) == 0 {
			continue
		}
		q := rune(part[0])
		if (q == '"' || q == '\'') && (len(part) == 1 || rune(part[len(part)-1]) != q) && !strings.ContainsRune(part[1:], q) {
			return q
		}
	}
	return 0
}

func afterColon(s string) string {
	if _, v, ok := cutMapping(s); ok {
		return v
	}
	return ""
}

func bracketBalance(s string) int {
	n := 0
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '[' || r == '{':
			n++
		case r == ']' || r == '}':
			n--
		case r == '#':
			return n
		}
	}
	return n
}
