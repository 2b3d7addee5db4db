package dadchttp

import "encoding/json"

// InputSpec describes how a Codec's inputs travel in requests and how error
// messages name them.
type InputSpec struct {
	// Field is the JSON member that carries the input in /api/predict and
	// /api/flag bodies, and the member of each sample of /api/samples that
	// shows it; for instance "image". Required.
	Field string
	// Example is a JSON value shown in error messages as what to send in
	// Field, for instance `"data:image/png;base64,..."`. Required.
	Example string
	// Noun names one input in messages, for instance "the drawing".
	// Default: "the input".
	Noun string
	// Labels names the classes: Labels[i] is the name of label i. Its
	// length is the number of classes; labels outside [0, len) are refused.
	// Required.
	Labels []string
}

// Codec turns request values into inputs of type In and inputs into values
// a page can show. It is the only part of a Handler that knows the input
// kind. Its methods must be safe for concurrent use.
type Codec[In any] interface {
	// Spec describes the inputs. It is called once, by New.
	Spec() InputSpec
	// DecodeJSON decodes the value of Spec().Field; raw is nil when the
	// member is missing. Errors a person can fix are *Error values (a 4xx
	// status and a message); any other error is answered 400 with its text.
	DecodeJSON(raw json.RawMessage) (In, error)
	// Render returns a JSON-encodable value that shows in to a person (for
	// a drawing, a data URL of the image the model saw).
	Render(in In) (any, error)
}

// BodyDecoder is an optional Codec capability: taking /api/predict bodies
// that are not JSON, such as a raw image/png upload. Safe for concurrent use.
type BodyDecoder[In any] interface {
	// MediaTypes lists the Content-Types DecodeBody takes, lower case
	// without parameters, for instance "image/png".
	MediaTypes() []string
	// DecodeBody decodes a whole body of one of MediaTypes. Errors as for
	// Codec.DecodeJSON.
	DecodeBody(mediaType string, body []byte) (In, error)
}
