<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 429 rate_limited. Never retried by the client: the caller decides whether
 * to wait {@see getRetryAfter()} seconds or drop the work.
 */
class RateLimitedException extends ApiException
{
    private ?float $retryAfter;

    public function __construct(
        string $errorCode,
        string $errorMessage,
        string $field = '',
        int $httpStatus = 429,
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
