# pragma version ~=0.4.0
# A treasury that pays out in batches: one transaction, one token Transfer log per receiver.

interface Token:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable

owner: address


@deploy
def __init__():
    self.owner = msg.sender


@external
def pay(token: address, receivers: DynArray[address, 16], amounts: DynArray[uint256, 16]):
    assert msg.sender == self.owner, "only the owner"
    assert len(receivers) == len(amounts), "one amount per receiver"
    for i: uint256 in range(len(receivers), bound=16):
        assert extcall Token(token).transfer(receivers[i], amounts[i])
