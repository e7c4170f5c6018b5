<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * The request never got an HTTP answer: DNS failure, connection refused,
 * timeout, TLS error. {@see getCurlErrno()} tells which; {@see
 * wasConnectFailure()} tells whether the server certainly did not see the
 * request (so even a non-idempotent call may be repeated).
 */
class TransportException extends PushPullException
{
    private int $curlErrno;

    public function __construct(string $message, int $curlErrno = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message, 0, $previous);
        $this->curlErrno = $curlErrno;
    }

    /** The cURL error number (CURLE_*), 0 when not from cURL. */
    public function getCurlErrno(): int
    {
        return $this->curlErrno;
    }

    /**
     * True when no connection was made (name not resolved, connection
     * refused): the server cannot have acted on the request.
     */
    public function wasConnectFailure(): bool
    {
        return in_array($this->curlErrno, [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT], true);
    }

    /** True when the request timed out (connect or total timeout). */
    public function isTimeout(): bool
    {
        return $this->curlErrno === CURLE_OPERATION_TIMEDOUT;
    }
}
