"""The EVM chain family: web3.py adapter, compiled contract artifacts and the anvil devnet."""
