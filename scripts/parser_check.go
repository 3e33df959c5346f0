// The go-imap side of scripts/parser-check.sh: reads every message of INBOX from nestbox
// through go-imap v1 (Debian's golang-github-emersion-go-imap-dev), whose client parses
// ENVELOPE and BODYSTRUCTURE into structs, and prints what it read, one JSON line per
// message, for parser_check.py to judge. Built offline, GOPATH style:
//
//	GO111MODULE=off GOPATH=/tmp/gopath:/usr/share/gocode go build -o parser_check parser_check.go
//	parser_check PORT USER PASSWORD OUT_DIR
//
// Writes OUT_DIR/go-imap.jsonl and OUT_DIR/go-imap-session.jsonl. go-imap reports an
// unparseable line or an unusable FETCH through its ErrorLog (and drops the message):
// every such line is kept, with the command being run.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/responses"
)

var (
	mu                    sync.Mutex
	current               string                   // the command being run, for the error log
	loose                 []map[string]interface{} // problems not tied to a message
	port, user, pass, out = os.Args[1], os.Args[2], os.Args[3], os.Args[4]
)

// errLog receives go-imap's ErrorLog lines (parse errors, unusable responses).
type errLog struct{}

func (errLog) Write(p []byte) (int, error) {
	mu.Lock()
	s := strings.TrimSpace(string(p))
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	loose = append(loose, map[string]interface{}{"kind": "go-imap-log", "err": s + " [while " + current + "]"})
	mu.Unlock()
	return len(p), nil
}

func connect() *client.Client {
	c, err := client.Dial("127.0.0.1:" + port)
	if err != nil {
		log.Fatal(err)
	}
	c.ErrorLog = log.New(errLog{}, "", 0)
	if err := c.Login(user, pass); err != nil {
		log.Fatal(err)
	}
	return c
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func read(l imap.Literal) []byte {
	if l == nil {
		return nil
	}
	b, _ := io.ReadAll(l)
	return b
}

// tree is the BODYSTRUCTURE in parser_check.py's shape.
type tree struct {
	T     string  `json:"t"`
	Size  *uint32 `json:"size"`
	Lines *uint32 `json:"lines"`
	Kids  []*tree `json:"kids,omitempty"`
}

func conv(bs *imap.BodyStructure) *tree {
	t := &tree{T: strings.ToLower(bs.MIMEType + "/" + bs.MIMESubType)}
	if bs.MIMEType == "multipart" || strings.EqualFold(bs.MIMEType, "multipart") {
		for _, p := range bs.Parts {
			t.Kids = append(t.Kids, conv(p))
		}
		return t
	}
	size, lines := bs.Size, bs.Lines
	t.Size = &size
	if strings.EqualFold(bs.MIMEType, "text") || t.T == "message/rfc822" {
		t.Lines = &lines
	}
	if t.T == "message/rfc822" && bs.BodyStructure != nil {
		t.Kids = []*tree{conv(bs.BodyStructure)}
	}
	return t
}

func section(s string) *imap.BodySectionName {
	sec, err := imap.ParseBodySectionName(imap.FetchItem(s))
	if err != nil {
		log.Fatal(s, err)
	}
	return sec
}

// fetch runs UID FETCH over uids in batches of 200 and hands each message to fn.
func fetch(c *client.Client, total uint32, items []imap.FetchItem, fn func(*imap.Message)) {
	for lo := uint32(1); lo <= total; lo += 200 {
		hi := lo + 199
		if hi > total {
			hi = total
		}
		set := new(imap.SeqSet)
		set.AddRange(lo, hi)
		mu.Lock()
		current = fmt.Sprintf("UID FETCH %d:%d %v", lo, hi, items)
		mu.Unlock()
		ch := make(chan *imap.Message, 16)
		done := make(chan error, 1)
		go func() { done <- c.UidFetch(set, items, ch) }()
		for m := range ch {
			fn(m)
		}
		if err := <-done; err != nil {
			loose = append(loose, map[string]interface{}{"kind": "fetch-failed", "err": current + ": " + err.Error()})
		}
	}
}

func main() {
	results := map[uint32]map[string]interface{}{}
	rec := func(uid uint32) map[string]interface{} {
		if results[uid] == nil {
			results[uid] = map[string]interface{}{"uid": uid, "errs": []string{}}
		}
		return results[uid]
	}
	c := connect()
	box, err := c.Select("INBOX", true)
	if err != nil {
		log.Fatal(err)
	}
	total := box.UidNext - 1
	whole := section("BODY.PEEK[]")
	// 1. the whole message and its metadata
	fetch(c, total, []imap.FetchItem{imap.FetchUid, imap.FetchFlags, imap.FetchInternalDate, imap.FetchRFC822Size,
		imap.FetchEnvelope, imap.FetchBodyStructure, whole.FetchItem()}, func(m *imap.Message) {
		r := rec(m.Uid)
		body := read(m.GetBody(whole))
		r["size"], r["body_len"], r["body_sha"], r["flags"] = m.Size, len(body), sum(body), m.Flags
		if body == nil {
			r["errs"] = append(r["errs"].([]string), "BODY[] missing or not a literal")
		}
		if !m.InternalDate.IsZero() {
			r["internaldate"] = m.InternalDate.Format(time.RFC3339)
		}
		if e := m.Envelope; e != nil {
			r["subject"], r["message_id"] = e.Subject, e.MessageId
			from := []string{}
			for _, a := range e.From {
				from = append(from, a.Address())
			}
			r["from"] = from
		}
		if m.BodyStructure != nil {
			r["tree"] = conv(m.BodyStructure)
		}
	})
	// 2. BODY[1] and the From and Subject header fields
	one, hdr := section("BODY.PEEK[1]"), section("BODY.PEEK[HEADER.FIELDS (From Subject)]")
	fetch(c, total, []imap.FetchItem{imap.FetchUid, one.FetchItem(), hdr.FetchItem()}, func(m *imap.Message) {
		r := rec(m.Uid)
		b1, h := read(m.GetBody(one)), read(m.GetBody(hdr))
		r["body1_len"], r["body1_sha"], r["hdr_sha"], r["hdr"] = len(b1), sum(b1), sum(h), string(h)
	})
	// 3. BINARY[1] where offered, one message at a time (a part the server cannot decode
	// is answered NO); go-imap v1 keeps the unknown BINARY[1] item in Items.
	if ok, _ := c.Support("BINARY"); ok {
		for uid := uint32(1); uid <= total; uid++ {
			set := new(imap.SeqSet)
			set.AddNum(uid)
			current = fmt.Sprintf("UID FETCH %d BINARY.PEEK[1]", uid)
			ch := make(chan *imap.Message, 1)
			err := c.UidFetch(set, []imap.FetchItem{imap.FetchUid, "BINARY.PEEK[1]"}, ch)
			r := rec(uid)
			r["bin1_sha"], r["bin1_err"] = nil, "no data"
			if err != nil {
				r["bin1_err"] = err.Error()
			}
			for m := range ch {
				for k, v := range m.Items {
					if strings.HasPrefix(string(k), "BINARY[") {
						var b []byte
						switch v := v.(type) {
						case imap.Literal:
							b = read(v)
						case string:
							b = []byte(v)
						}
						if b != nil {
							r["bin1_sha"], r["bin1_len"], r["bin1_err"] = sum(normText(b)), len(b), nil
						}
					}
				}
			}
		}
	}
	// 4. the sampled parts: every leaf and message/rfc822 section of 300 messages
	var sample map[string][]string
	b, _ := os.ReadFile(filepath.Join(out, "sample.json"))
	json.Unmarshal(b, &sample)
	for u, secs := range sample {
		uid, _ := strconv.Atoi(u)
		set := new(imap.SeqSet)
		set.AddNum(uint32(uid))
		items := []imap.FetchItem{imap.FetchUid}
		names := []*imap.BodySectionName{}
		for _, s := range secs {
			n := section("BODY.PEEK[" + s + "]")
			names = append(names, n)
			items = append(items, n.FetchItem())
		}
		current = fmt.Sprintf("UID FETCH %d %v", uid, items)
		ch := make(chan *imap.Message, 1)
		err := c.UidFetch(set, items, ch)
		r := rec(uint32(uid))
		parts := map[string]int{}
		for m := range ch {
			for i, n := range names {
				if p := m.GetBody(n); p != nil {
					parts[secs[i]] = len(read(p))
				} else {
					r["errs"] = append(r["errs"].([]string), "BODY["+secs[i]+"] missing or not a literal")
				}
			}
		}
		if err != nil {
			r["errs"] = append(r["errs"].([]string), current+": "+err.Error())
		}
		r["parts"] = parts
	}
	c.Logout()
	session()
	f, _ := os.Create(filepath.Join(out, "go-imap.jsonl"))
	enc := json.NewEncoder(f)
	for _, r := range results {
		enc.Encode(r)
	}
	for _, l := range loose {
		enc.Encode(l)
	}
	f.Close()
	fmt.Printf("go-imap: %d messages read, %d log lines or failed commands\n", len(results), len(loose))
}

// normText: decoded text compared loosely (parser_check.py norm_text does the same).
func normText(b []byte) []byte {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\f\v")
	}
	return []byte(strings.TrimRight(strings.Join(lines, "\n"), " \t\n\r\f\v"))
}

// raw is a command go-imap v1 has no method for (SELECT with CONDSTORE, SORT).
type raw struct {
	name string
	args []interface{}
}

func (r raw) Command() *imap.Command { return &imap.Command{Name: r.name, Arguments: r.args} }

// codes keeps the response codes of the untagged status responses of a raw command
// (OK [HIGHESTMODSEQ n]) and leaves every response to go-imap's own handlers as well.
type codes struct{ seen []string }

func (h *codes) Handle(resp imap.Resp) error {
	if s, ok := resp.(*imap.StatusResp); ok && s.Code != "" {
		h.seen = append(h.seen, fmt.Sprint(s.Code, s.Arguments))
	}
	return responses.ErrUnhandled
}

// The mailbox session; each step is one line {step, ok, info, err}.
func session() {
	var steps []map[string]interface{}
	step := func(name string, fn func() (string, error)) {
		current = "session " + name
		info, err := fn()
		s := map[string]interface{}{"step": name, "ok": err == nil, "info": info}
		if err != nil {
			s["err"] = err.Error()
		}
		steps = append(steps, s)
	}
	c, other := connect(), connect()
	work, moved := "PC-go-imap", "PC-go-imap-moved"
	set := func(s string) *imap.SeqSet { x, _ := imap.ParseSeqSet(s); return x }
	step("LIST", func() (string, error) {
		ch := make(chan *imap.MailboxInfo, 50)
		err := c.List("", "*", ch)
		n := 0
		for range ch {
			n++
		}
		return fmt.Sprint(n, " mailboxes"), err
	})
	step("CREATE", func() (string, error) {
		if err := c.Create(work); err != nil {
			return "", err
		}
		return "", c.Create(moved)
	})
	step("STATUS", func() (string, error) {
		s, err := c.Status("INBOX", []imap.StatusItem{imap.StatusMessages, imap.StatusUidNext, imap.StatusUnseen})
		if err != nil {
			return "", err
		}
		return fmt.Sprint(s.Messages, " messages, ", s.Unseen, " unseen"), nil
	})
	step("SELECT-CONDSTORE", func() (string, error) {
		h := &codes{}
		st, err := c.Execute(raw{"SELECT", []interface{}{"INBOX", []interface{}{imap.RawString("CONDSTORE")}}}, h)
		if err == nil {
			err = st.Err()
		}
		if err != nil {
			return "", err
		}
		modseq := ""
		for _, s := range h.seen {
			if strings.HasPrefix(s, "HIGHESTMODSEQ") {
				modseq = s
			}
		}
		if modseq == "" {
			return strings.Join(h.seen, " "), fmt.Errorf("no HIGHESTMODSEQ")
		}
		if _, err := c.Select("INBOX", false); err != nil { // for go-imap's own state
			return "", err
		}
		return modseq + ", tagged " + string(st.Code), nil
	})
	search := func(uid bool, crit *imap.SearchCriteria) (string, error) {
		var ids []uint32
		var err error
		if uid {
			ids, err = c.UidSearch(crit)
		} else {
			ids, err = c.Search(crit)
		}
		return fmt.Sprint(len(ids)), err
	}
	step("SEARCH-UNSEEN", func() (string, error) {
		return search(false, &imap.SearchCriteria{WithoutFlags: []string{imap.SeenFlag}})
	})
	step("SEARCH-TEXT", func() (string, error) { return search(false, &imap.SearchCriteria{Text: []string{"money"}}) })
	step("UID-SEARCH-SINCE", func() (string, error) {
		return search(true, &imap.SearchCriteria{Since: time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)})
	})
	step("SORT", func() (string, error) { // go-imap v1 has no SORT: a raw command, its answer kept
		st, err := c.Execute(raw{"UID SORT", []interface{}{[]interface{}{imap.RawString("DATE")}, imap.RawString("UTF-8"), imap.RawString("ALL")}}, nil)
		if err == nil {
			err = st.Err()
		}
		return "", err
	})
	step("STORE-FLAGS", func() (string, error) {
		return "", c.Store(set("1:5"), imap.FormatFlagsOp(imap.AddFlags, true), []interface{}{imap.FlaggedFlag}, nil)
	})
	step("COPY", func() (string, error) { return "", c.Copy(set("1:10"), work) })
	step("SELECT-WORK", func() (string, error) {
		b, err := c.Select(work, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(b.Messages), nil
	})
	step("MOVE", func() (string, error) { return "", c.Move(set("1:3"), moved) })
	step("EXPUNGE", func() (string, error) {
		if err := c.Store(set("1:2"), imap.FormatFlagsOp(imap.AddFlags, true), []interface{}{imap.DeletedFlag}, nil); err != nil {
			return "", err
		}
		ch := make(chan uint32, 10)
		err := c.Expunge(ch)
		n := 0
		for range ch {
			n++
		}
		return fmt.Sprint(n, " expunged"), err
	})
	step("IDLE", func() (string, error) {
		updates := make(chan client.Update, 100)
		c.Updates = updates
		before := c.Mailbox().Messages
		stop, done := make(chan struct{}), make(chan error, 1)
		go func() { done <- c.Idle(stop, nil) }()
		time.Sleep(500 * time.Millisecond)
		if err := other.Append(work, nil, time.Now(), imap.Literal(strings.NewReader("From: a@example.com\r\nSubject: idle\r\n\r\nbody\r\n"))); err != nil {
			return "", err
		}
		var got uint32
		deadline := time.After(2 * time.Second)
	wait:
		for {
			select {
			case u := <-updates:
				// any EXISTS (go-imap v1 does not lower its count on EXPUNGE: no comparison)
				if mu, ok := u.(*client.MailboxUpdate); ok {
					got = mu.Mailbox.Messages
				}
			case <-deadline:
				break wait
			}
		}
		close(stop)
		err := <-done
		c.Updates = nil
		if err == nil && got == 0 {
			err = fmt.Errorf("no EXISTS during IDLE")
		}
		return fmt.Sprint("EXISTS ", got, " (was ", before, ")"), err
	})
	c.Logout()
	other.Logout()
	f, _ := os.Create(filepath.Join(out, "go-imap-session.jsonl"))
	enc := json.NewEncoder(f)
	for _, s := range steps {
		enc.Encode(s)
	}
	f.Close()
}
