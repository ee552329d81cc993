"""Development-only: the embedded Redis, a whole local stack, the demo.

The only room that may import `providers.sandbox`.
"""
