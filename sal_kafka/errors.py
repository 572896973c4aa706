"""One exception hierarchy for the whole library.

Every error carries where it happened: a file and line for definition
problems, a topic and field path for data problems, a URL and subject for
registry problems, the broker's address and what it said for Kafka ones::

    SalKafkaError
    ├── ConfigError (ValueError)        a setting or argument that is not valid
    ├── XmlError                        a ts_xml file: file, line, element
    │   └── UnknownComponentError       a name SALSubsystems.xml does not list
    ├── UnknownTopicError (KeyError)    a topic the component does not have
    ├── ValidationError (ValueError)    a record that does not fit its topic: topic, $.path
    │   └── UnknownFieldError (AttributeError)  a field the topic does not have
    ├── CodecError (ValueError)         Avro bytes that do not encode or decode
    │   ├── WireFormatError             not the Confluent wire format
    │   └── UnknownSchemaError          a schema id the registry does not know
    ├── RegistryError                   the registry refused or is unreachable: url, subject
    │   └── IncompatibleSchemaError     a change the subject's compatibility refuses
    ├── KafkaIOError                    the broker refused, is unreachable, or lost a message
    │   └── BrokerError                 the embedded broker cannot be fetched or started
    ├── SinkError                       a sink cannot store a topic (a table, a database)
    │   └── SinkUnavailableError             its store is down for now: retried
    └── AckError                        a command's final ack is an error: ackcmd
        └── AckTimeoutError             no final ack in time
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SalKafkaError",
    "ConfigError",
    "XmlError",
    "UnknownComponentError",
    "UnknownTopicError",
    "ValidationError",
    "UnknownFieldError",
    "CodecError",
    "WireFormatError",
    "UnknownSchemaError",
    "RegistryError",
    "IncompatibleSchemaError",
    "KafkaIOError",
    "BrokerError",
    "SinkError",
    "SinkUnavailableError",
    "AckError",
    "AckTimeoutError",
]


class SalKafkaError(Exception):
    """Base class of every error raised by sal-kafka."""


class ConfigError(SalKafkaError, ValueError):
    """A setting or argument is not valid (a mode, an index, a URL, a librdkafka setting).

    The message names the setting, the value given and what was expected.
    """


class XmlError(SalKafkaError):
    """A ts_xml definition file is malformed or inconsistent.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    path : str or None
        The file.
    line : int or None
        The line in that file.
    element : str or None
        The XML element (tag) at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        element: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.element = element
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.path or "<unknown file>"
        if self.line is not None:
            where += f":{self.line}"
        if self.element:
            where += f": <{self.element}>"
        return f"{where}: {self.message}"


class UnknownComponentError(XmlError):
    """A component name that SALSubsystems.xml does not list."""


class UnknownTopicError(SalKafkaError, KeyError):
    """A topic name that the component does not have, or that is ambiguous."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ValidationError(SalKafkaError, ValueError):
    """A record does not match its topic.

    The message follows msgspec's form, prefixed with the topic:
    ``MTM1M3.tel_forceActuatorData: Expected 156 items, got 155 - at $.primaryCylinderForce``.
    """


class UnknownFieldError(ValidationError, AttributeError):
    """A field name the topic does not have (an AttributeError too, as ts_salobj raises).

    The message names the topic, the name given, the closest names and how many fields the topic has.
    """


class CodecError(SalKafkaError, ValueError):
    """Avro bytes could not be encoded or decoded."""


class WireFormatError(CodecError):
    """A message is not in the Confluent wire format."""


class UnknownSchemaError(CodecError):
    """A message names a schema id that is not known."""


class RegistryError(SalKafkaError):
    """The schema registry refused a request or could not be reached.

    Parameters
    ----------
    message : str
        What failed and why.
    url, subject : str or None
        The registry and the subject concerned.
    http_status, error_code : int or None
        The registry's answer (e.g. 404 and 40403), None if it gave none.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        subject: str | None = None,
        http_status: int | None = None,
        error_code: int | None = None,
    ) -> None:
        self.url = url
        self.subject = subject
        self.http_status = http_status
        self.error_code = error_code
        where = ", ".join(p for p in (f"url={url}" if url else "", f"subject={subject}" if subject else "") if p)
        super().__init__(f"{message} ({where})" if where else message)


class IncompatibleSchemaError(RegistryError):
    """A schema change breaks the subject's compatibility level."""


class KafkaIOError(SalKafkaError):
    """The Kafka broker refused a request, was unreachable, or lost a message."""


class BrokerError(KafkaIOError):
    """The embedded Apache Kafka broker could not be fetched or started (no Java, no
    jars, a node that exited: the message shows the last lines of its log)."""


class SinkError(SalKafkaError):
    """A sink cannot store a topic (an incompatible table, an unusable database)."""


class SinkUnavailableError(SinkError):
    """A sink's store is down for now (a lost connection): the batch is retried, nothing is lost."""


class AckError(SalKafkaError):
    """A command failed: its final acknowledgement is an error code.

    Attributes
    ----------
    ackcmd : Any
        The acknowledgement (``ack``, ``error``, ``result``, ``private_seqNum``, ...).
    message : str
        What happened, without the acknowledgement's fields.
    """

    def __init__(self, message: str, *, ackcmd: Any) -> None:
        self.ackcmd = ackcmd
        self.message = message  # what happened, without the ack's fields
        ack, result = getattr(ackcmd, "ack", None), getattr(ackcmd, "result", "")
        super().__init__(f"{message}: ack={_ack_name(ack)}, error={getattr(ackcmd, 'error', 0)}, result={result!r}")


class AckTimeoutError(AckError):
    """No final acknowledgement came in time; ``ackcmd`` is the last seen (or a CMD_NOACK one)."""


def _ack_name(code: Any) -> str:
    names = {300: "CMD_ACK", 301: "CMD_INPROGRESS", 302: "CMD_STALLED", 303: "CMD_COMPLETE", -300: "CMD_NOPERM"}
    names.update({-301: "CMD_NOACK", -302: "CMD_FAILED", -303: "CMD_ABORTED", -304: "CMD_TIMEOUT"})
    return names.get(code, str(code))
