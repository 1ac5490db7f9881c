"""The synchronous HTTP door (CONTRACT section 1), served by aiohttp."""
