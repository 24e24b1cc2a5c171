// Package wire holds the JSON bodies of the HTTP API that the server, the ota CLI
// and the Go device client all speak, so that one declaration fixes each body.
//
// Answers the server used to build as maps list their fields in key order: a map
// encodes its keys sorted, and the struct must encode the same bytes.
package wire
