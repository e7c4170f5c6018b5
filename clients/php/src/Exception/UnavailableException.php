<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 503 unavailable: the server is starting, draining or timed out and did not
 * act on the request. The client retries it (within its retry budget) before
 * it reaches the caller.
 */
class UnavailableException extends ApiException
{
    private ?float $retryAfter;

    public function __construct(
        string $errorCode,
        string $errorMessage,
        string $field = '',
        int $httpStatus = 503,
        string $requestId = '',
        ?float $retryAfter = null
    ) {
        parent::__construct($errorCode, $errorMessage, $field, $httpStatus, $requestId);
        $this->retryAfter = $retryAfter;
    }

    /** Seconds to wait (from Retry-After), or null when the server gave none. */
    public function getRetryAfter(): ?float
    {
        return $this->retryAfter;
    }
}
