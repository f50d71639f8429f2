package transform

// ingestionLayout writes <aws.pipes.event.ingestion-time>: the
// documentation says only "an ISO 8601 timestamp"; this package writes
// UTC with milliseconds, the precision of Kafka timestamps, in the form
// EventBridge uses for an event's "time" plus the fraction.
const ingestionLayout = "2006-01-02T15:04:05.000Z"

// render writes the variable of p in its context. spans is scratch for
// wildcard matches, kept across variables to allocate once per Apply.
func (d *doc) render(dst []byte, p *part, v *Vars, spans []span) ([]byte, []span) {
	switch p.v.kind {
	case varPath:
		if p.v.path.wild {
			spans = d.evalAll(&p.v.path, spans[:0])
			return d.appendArray(dst, spans, p.ctx), spans
		}
		s, ok := d.eval(&p.v.path)
		if !ok {
			return appendMissing(dst, p.ctx), spans
		}
		return appendValue(dst, d.b[s.start:s.end], p.ctx), spans
	case varPipeARN:
		return appendText(dst, v.PipeARN, p.ctx), spans
	case varPipeName:
		return appendText(dst, v.PipeName, p.ctx), spans
	case varSourceARN:
		return appendText(dst, v.SourceARN, p.ctx), spans
	case varEnrichmentARN:
		return appendText(dst, v.EnrichmentARN, p.ctx), spans
	case varTargetARN:
		return appendText(dst, v.TargetARN, p.ctx), spans
	case varIngestionTime:
		var buf [32]byte
		ts := v.IngestionTime.UTC().AppendFormat(buf[:0], ingestionLayout)
		if p.ctx == ctxValue {
			dst = append(dst, '"')
			dst = append(dst, ts...)
			return append(dst, '"'), spans
		}
		return append(dst, ts...), spans
	case varEvent:
		return d.appendOriginal(dst, p.ctx == ctxString), spans
	case varEventJSON:
		// "The variable only has a value if the original payload ... is
		// JSON": for a record whose value stayed base64 it is missing.
		if !d.payloadIsJSON() {
			return appendMissing(dst, p.ctx), spans
		}
		return appendJSON(dst, d.b, false), spans
	}
	return dst, spans
}

// appendMissing writes a variable that has no value. The rules
// documentation says such a variable "isn't created and won't appear in
// the output", so text and dynamic strings get nothing. Where a JSON
// value must stand, nothing would break the JSON the Pipes documentation
// promises ("EventBridge replaces input transformers at runtime to ensure
// a valid JSON output"), so this package writes null there: a choice, as
// the documentation does not say which valid JSON it writes.
func appendMissing(dst []byte, ctx context) []byte {
	if ctx == ctxValue {
		return append(dst, "null"...)
	}
	return dst
}

// appendValue writes one value of the event, raw being valid JSON.
func appendValue(dst, raw []byte, ctx context) []byte {
	switch ctx {
	case ctxValue:
		// As the documentation's example: "instance": <$.detail.instance-id>
		// gives "instance": "i-0123456789", a string with its quotes.
		return appendJSON(dst, raw, false)
	case ctxString:
		if raw[0] == '"' {
			// The content of a JSON string is already escaped for one.
			return append(dst, raw[1:len(raw)-1]...)
		}
		// A number, boolean or null as its text; an object or array as
		// its JSON, escaped.
		return appendJSON(dst, raw, true)
	default:
		if raw[0] == '"' {
			return appendUnescaped(dst, raw[1:len(raw)-1])
		}
		return appendJSON(dst, raw, false)
	}
}

// appendArray writes the matches of a wildcard path as a JSON array.
func (d *doc) appendArray(dst []byte, spans []span, ctx context) []byte {
	esc := ctx == ctxString
	dst = append(dst, '[')
	for k, s := range spans {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSON(dst, d.b[s.start:s.end], esc)
	}
	return append(dst, ']')
}

// appendText writes a reserved variable's string value.
func appendText(dst []byte, s string, ctx context) []byte {
	switch ctx {
	case ctxValue:
		return appendString(dst, s)
	case ctxString:
		return appendStringContent(dst, s)
	}
	return append(dst, s...)
}
