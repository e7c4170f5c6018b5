<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 400 invalid_argument: a field is missing or wrong; getField() names it (e.g. "events[3].users").
 */
class InvalidArgumentException extends ApiException
{
}
