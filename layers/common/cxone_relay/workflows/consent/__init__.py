"""Opt-out, opt-in and DNC sync: the consent API (web, IVR, agents) and the opt-out queue's
consumer, which puts every opted-out number in the DNC group of every CXone environment."""
