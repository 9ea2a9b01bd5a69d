"""Deployment: table schemas now; bundle build and deploy definitions arrive with [bundle] and [deploy]."""
