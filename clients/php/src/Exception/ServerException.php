<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * A 5xx answer other than 503 (internal error, bad gateway). Requests that are safe to repeat were already retried.
 */
class ServerException extends ApiException
{
}
