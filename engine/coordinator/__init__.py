"""The coordinators a broker hosts: the group coordinator and the transaction coordinator."""
