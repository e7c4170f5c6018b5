<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * The server answered with an error (`{"error": {"code", "message", "field"}}`).
 *
 * getCode() is the HTTP status (0 for errors this library detects itself
 * before sending, such as a Bitrix array with an unknown key); getErrorCode()
 * is the API code (`invalid_argument`, `unauthenticated`, ...). Use
 * {@see fromResponse()} to get the subclass matching the code.
 */
class ApiException extends PushPullException
{
    private string $errorCode;
    private string $errorMessage;
    private string $field;
    private string $requestId;

    public function __construct(
        string $errorCode,
        string $errorMessage,
        string $field = '',
        int $httpStatus = 0,
        string $requestId = '',
        ?\Throwable $previous = null
    ) {
        $text = $errorCode . ': ' . ($field !== '' ? $field . ': ' : '') . $errorMessage;
        if ($httpStatus > 0) {
            $text .= ' (HTTP ' . $httpStatus . ')';
        }
        parent::__construct($text, $httpStatus, $previous);
        $this->errorCode = $errorCode;
        $this->errorMessage = $errorMessage;
        $this->field = $field;
        $this->requestId = $requestId;
    }

    /** The API error code, e.g. "invalid_argument". */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    /** The server's human-readable message. */
    public function getErrorMessage(): string
    {
        return $this->errorMessage;
    }

    /** The offending input, e.g. "events[3].users"; "" when none. */
    public function getField(): string
    {
        return $this->field;
    }

    /** The HTTP status; 0 when the error was detected before sending. */
    public function getHttpStatus(): int
    {
        return $this->getCode();
    }

    /** The server's X-Request-Id, to find the request in its log. */
    public function getRequestId(): string
    {
        return $this->requestId;
    }

    /**
     * Builds the exception for an error answer.
     *
     * @param float|null $retryAfter seconds from the Retry-After header
     */
    public static function fromResponse(
        int $status,
        string $code,
        string $message,
        string $field = '',
        ?float $retryAfter = null,
        string $requestId = ''
    ): self {
        switch ($code) {
            case 'invalid_argument':
                return new InvalidArgumentException($code, $message, $field, $status, $requestId);
            case 'unauthenticated':
                return new UnauthenticatedException($code, $message, $field, $status, $requestId);
            case 'permission_denied':
                return new PermissionDeniedException($code, $message, $field, $status, $requestId);
            case 'not_found':
                return new NotFoundException($code, $message, $field, $status, $requestId);
            case 'conflict':
                return new ConflictException($code, $message, $field, $status, $requestId);
            case 'payload_too_large':
                return new PayloadTooLargeException($code, $message, $field, $status, $requestId);
            case 'rate_limited':
                return new RateLimitedException($code, $message, $field, $status, $requestId, $retryAfter);
            case 'unavailable':
                return new UnavailableException($code, $message, $field, $status, $requestId, $retryAfter);
        }
        if ($status >= 500) {
            return new ServerException($code, $message, $field, $status, $requestId);
        }
        return new self($code, $message, $field, $status, $requestId);
    }

    /** The API code for an HTTP status, for answers without an error body. */
    public static function codeForStatus(int $status): string
    {
        return [
            400 => 'invalid_argument', 401 => 'unauthenticated', 403 => 'permission_denied',
            404 => 'not_found', 405 => 'method_not_allowed', 409 => 'conflict',
            413 => 'payload_too_large', 429 => 'rate_limited', 503 => 'unavailable',
        ][$status] ?? ($status >= 500 ? 'internal' : 'unknown');
    }
}
