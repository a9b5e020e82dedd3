"""In-process HTTP simulators of CXone and the ticketing system, for unit tests and the local stack."""

from local.simulators.cxone import CxoneSimulator
from local.simulators.ticketing import TicketingSimulator

__all__ = ["CxoneSimulator", "TicketingSimulator"]
