package transform

// doc is one record's event during Apply: its bytes, which validate has
// accepted, and indexes of two objects: the record itself, and the last
// nested object a path stepped into (typically the JSON value, which
// several paths of one template read). An index is one scan; without it,
// each <$.value.x> would scan the whole value again to find x.
type doc struct {
	b   []byte
	top objIndex
	sub objIndex
}

// maxIndexed bounds an index so it lives on the stack; an object with
// more fields is scanned instead. A Kafka record has 12.
const maxIndexed = 24

type objIndex struct {
	start int // offset of the object's '{'; -1 when the index is empty
	n     int
	f     [maxIndexed]field
}

type field struct {
	key span // the key's content, without quotes
	val span
}

// indexObject indexes the object at b[i] into x, or empties x and
// reports false when the object has too many fields.
func (d *doc) indexObject(x *objIndex, i int) bool {
	b := d.b
	x.start, x.n = -1, 0
	start := i
	i = skipWS(b, i+1)
	for b[i] != '}' {
		if x.n == maxIndexed {
			x.n = 0
			return false
		}
		ke := skipString(b, i)
		k := span{i + 1, ke - 1}
		i = skipWS(b, skipWS(b, ke)+1)
		e := skipValue(b, i)
		x.f[x.n] = field{k, span{i, e}}
		x.n++
		i = skipWS(b, e)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	x.start = start
	return true
}

// member returns the start of field name's value in the object at b[i].
// When a key repeats, the last one wins, as in JavaScript's JSON.parse,
// encoding/json and Jackson's tree model.
func (d *doc) member(i int, name string) (int, bool) {
	if d.b[i] != '{' {
		return 0, false
	}
	var x *objIndex
	switch i {
	case d.top.start:
		x = &d.top
	case d.sub.start:
		x = &d.sub
	default:
		if !d.indexObject(&d.sub, i) {
			return member(d.b, i, name)
		}
		x = &d.sub
	}
	for k := x.n - 1; k >= 0; k-- {
		f := &x.f[k]
		if keyEquals(d.b[f.key.start:f.key.end], name) {
			return f.val.start, true
		}
	}
	return 0, false
}

// payloadIsJSON reports whether implicit body parsing turned the
// record's value into JSON: RecordEvent leaves a value that is not JSON
// as a base64 string, so anything but a string (an object, array, number
// or boolean, or null for a tombstone) was parsed.
func (d *doc) payloadIsJSON() bool {
	i := skipWS(d.b, 0)
	v, ok := d.member(i, "value")
	return ok && d.b[v] != '"'
}

// appendOriginal writes the event as the source delivered it, for
// <aws.pipes.event>: a key or value that implicit body parsing decoded is
// base64-encoded again. RecordEvent embeds parsed payloads byte for byte,
// so this gives back the base64 of the original bytes (less any
// whitespace around the JSON). With esc it writes it as string content.
func (d *doc) appendOriginal(dst []byte, esc bool) []byte {
	b := d.b
	i := skipWS(b, 0)
	if b[i] != '{' {
		return appendJSON(dst, b, esc)
	}
	q := "\""
	if esc {
		q = `\"`
	}
	dst = append(dst, '{')
	i = skipWS(b, i+1)
	for first := true; b[i] != '}'; first = false {
		if !first {
			dst = append(dst, ',')
		}
		ke := skipString(b, i)
		key := b[i:ke]
		dst = appendJSON(dst, key, esc)
		dst = append(dst, ':')
		i = skipWS(b, skipWS(b, ke)+1)
		e := skipValue(b, i)
		val := b[i:e]
		if c := val[0]; c != '"' && c != 'n' && (keyEquals(key[1:len(key)-1], "value") || keyEquals(key[1:len(key)-1], "key")) {
			dst = append(dst, q...)
			dst = appendBase64(dst, val)
			dst = append(dst, q...)
		} else {
			dst = appendJSON(dst, val, esc)
		}
		i = skipWS(b, e)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return append(dst, '}')
}
