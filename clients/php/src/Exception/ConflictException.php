<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 409 conflict.
 */
class ConflictException extends ApiException
{
}
