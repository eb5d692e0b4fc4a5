// Package clusterspec is what a new hosted cluster on the Agent platform is made
// of: the fields a user gives (hcp create cluster agent's flags, or the console's
// wizard), their validation with messages that name the field, the objects they
// become, and creating those objects so that nothing half-created stays. The CLI
// and the console both build on it, so they accept and refuse the same input with
// the same words.
package clusterspec

import (
	"errors"
	"fmt"
)

// FieldError is a bad value of one field: which field (named as the CLI flag),
// what is wrong, and an example of a good value.
type FieldError struct {
	Field   string
	Problem string
	Example string
}

// Invalid is a FieldError.
func Invalid(field, problem, example string) error {
	return &FieldError{Field: field, Problem: problem, Example: example}
}

// Error reads as the CLI reports it: "--field: problem (for example: --field x)".
func (e *FieldError) Error() string {
	if e.Example == "" {
		return fmt.Sprintf("--%s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("--%s: %s (for example: --%s %s)", e.Field, e.Problem, e.Field, e.Example)
}

// Hint is the problem with its example, as shown next to a form field.
func (e *FieldError) Hint() string {
	if e.Example == "" {
		return e.Problem
	}
	return fmt.Sprintf("%s (for example: %s)", e.Problem, e.Example)
}

// AsFieldError finds the FieldError in err, if any.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	ok := errors.As(err, &fe)
	return fe, ok
}
