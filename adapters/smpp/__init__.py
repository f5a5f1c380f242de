"""SMPP 3.4: sans-IO codec and session, plus the asyncio edge."""
