<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 401 unauthenticated: the API key is missing or not accepted.
 */
class UnauthenticatedException extends ApiException
{
}
