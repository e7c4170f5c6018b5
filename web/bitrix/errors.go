package bitrix

import (
	"errors"
	"net/http"
	"strconv"
)

// Code is a Push server 2.0 error code (BITRIX.md §2.5): the WebSocket close
// code, and over HTTP the "<code>: <reason>" body of a 400 (429 for 4029).
type Code int

// Error codes.
const (
	CodeWrongChannel      Code = 4010
	CodeNoLastMessages    Code = 4011
	CodePublicRequired    Code = 4012
	CodeWrongData         Code = 4013
	CodeNotAllowed        Code = 4014
	CodeWrongCommand      Code = 4015
	CodeTooManyMessages   Code = 4016
	CodeNoChannels        Code = 4017
	CodeTooManyChannels   Code = 4018
	CodeInvalidChannel    Code = 4019
	CodePrivateNotAllowed Code = 4020
	CodeBadSignature      Code = 4021
	CodeTooManyConns      Code = 4029
)

var reasons = map[Code]string{
	CodeWrongChannel:      "Wrong Channel Id.",
	CodeNoLastMessages:    "Couldn't get last messages.",
	CodePublicRequired:    "Public Channel Id is Required.",
	CodeWrongData:         "Wrong Request Data.",
	CodeNotAllowed:        "Request command is not allowed.",
	CodeWrongCommand:      "Wrong Request Command.",
	CodeTooManyMessages:   "Request exceeded the maximum number of messages.",
	CodeNoChannels:        "No channels found.",
	CodeTooManyChannels:   "Request exceeded the maximum number of channels.",
	CodeInvalidChannel:    "Request has an invalid channel id.",
	CodePrivateNotAllowed: "Private channel is not allowed.",
	CodeBadSignature:      "Channel has an invalid signature.",
	CodeTooManyConns:      "Too many connections",
}

// Reason is the reason text the servers send: "<code>: <reason>".
func (c Code) Reason() string { return strconv.Itoa(int(c)) + ": " + reasons[c] }

// HTTPStatus is the status a code maps to over HTTP.
func (c Code) HTTPStatus() int {
	if c == CodeTooManyConns {
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// Error is a protocol error with its Bitrix code.
type Error struct {
	Code Code
	Err  error // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code.Reason() + " (" + e.Err.Error() + ")"
	}
	return e.Code.Reason()
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinels for limits hit while decoding.
var (
	ErrTooManyMessages = &Error{Code: CodeTooManyMessages}
	ErrTooManyChannels = &Error{Code: CodeTooManyChannels}
)

// codeOf classifies err: its *Error code, ErrWrongChannel as 4010, anything
// else as 4013.
func codeOf(err error) Code {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrWrongChannel):
		return CodeWrongChannel
	}
	return CodeWrongData
}
